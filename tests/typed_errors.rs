//! Errors of shape inference, graph building and passes are typed: a caller
//! matches on what went wrong instead of parsing a message.

use potc::ir::{Op, OpError, TypeError};
use potc::pass::{PassContext, PassError, PassManager, RewriteError};
use potc::passes::registry;
use potc::syntax;

fn failure(text: &str, pipeline: &str) -> PassError {
    let mut g = syntax::parse(text).unwrap();
    let reg = registry();
    let pipeline = reg.pipeline(pipeline).unwrap();
    let mut cx = PassContext::default();
    PassManager { allow_meaning_changes: true }.run(&pipeline, &mut g, &mut cx, |_| {}).unwrap_err()
}

#[test]
fn a_pass_failure_names_the_pass_and_its_typed_cause() {
    let avg = "model m(%x: [1, 16]) {\n  %p = avg_pool1d(%x) {kernel = 2}\n  return %p\n}\n";
    match failure(avg, "insert-fake-quant") {
        PassError::Failed {
            pass: "insert-fake-quant",
            error: RewriteError::Unsupported { node, .. },
        } => assert_eq!(node, "p"),
        other => panic!("{other:?}"),
    }
    let float = "model m(%x: [1, 16]) {\n  %r = relu(%x)\n  return %r\n}\n";
    let e = failure(float, "lower-int");
    assert!(matches!(e, PassError::Failed { pass: "lower-int", error: RewriteError::Model(_) }));
    assert!(e.to_string().contains("--weights CKPT"), "{e}");
}

#[test]
fn building_an_ill_typed_op_says_which_rule_it_breaks() {
    let mut g = syntax::parse("model m(%x: [2, 8]) {\n  return %x\n}\n").unwrap();
    let x = g.inputs()[0];
    let linear = Op::Linear(potc::ir::op::Linear {
        out_features: 3,
        bias: true,
        quant: Default::default(),
        input_divisor: None,
    });
    match g.add_op("y", linear, &[x]) {
        Err(OpError::Type(TypeError::WantsFeatures { op: "linear", got })) => {
            assert_eq!(got.shape, vec![2, 8])
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(g.add_op("a", Op::Add(Default::default()), &[x]), Err(OpError::Arity { .. })));
}
