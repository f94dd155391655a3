//! Checkpoints: round trips, deterministic bytes, conformance with the
//! safetensors crate, matching against a model, atomic replacement, and load
//! errors that name the file.

use potc::ckpt::{
    model_hash, write_atomic, Checkpoint, CkptError, Tensor, TensorData, KEY_CONFIG, KEY_LABELS,
    KEY_MODEL, KEY_MODEL_HASH, KEY_STATE,
};
use potc::ir::Graph;
use safetensors::{tensor::TensorView, Dtype};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

fn example(name: &str) -> Graph {
    let path = format!("{}/examples/{name}.pot", env!("CARGO_MANIFEST_DIR"));
    potc::syntax::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A checkpoint with every parameter of `g` (values 0, 1, 2, ...), optimizer
/// state for the first one and an i32 exponent tensor.
fn full_checkpoint(g: &Graph) -> Checkpoint {
    let mut ck = Checkpoint::default();
    for (name, spec) in g.params() {
        let n = spec.shape.iter().product::<usize>();
        ck.insert_f32(name, spec.shape, (0..n).map(|i| i as f32).collect());
    }
    ck.insert_f32("adam.m.c1.w", vec![128, 1, 8], vec![0.5; 1024]);
    ck.insert_i32("q.c1.w.exp", vec![1], vec![-6]);
    ck.set_model(g);
    ck
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Config {
    epochs: u32,
    lr: f64,
    quant: Option<String>,
}

/// A small checkpoint with both dtypes, awkward values and several metadata
/// keys (more than one, so a `HashMap` order would show).
fn sample() -> Checkpoint {
    let mut ck = Checkpoint::default();
    let special = vec![0.0, -0.0, 1.5, f32::MIN_POSITIVE / 2.0, f32::MAX, -3.25e-7];
    ck.insert_f32("c1.w", vec![2, 1, 3], special);
    ck.insert_f32("c1.b", vec![2], vec![0.25, -0.75]);
    ck.insert_f32("empty", vec![0, 4], vec![]);
    ck.insert_f32("scalar", vec![], vec![42.0]);
    ck.insert_i32("q.c1.w.exp", vec![2], vec![-7, i32::MAX]);
    ck.insert_i32("a.first", vec![1, 1], vec![i32::MIN]);
    ck.insert_i8("p.w", vec![2, 2], vec![-31, 0, 1, i8::MAX]);
    ck.set_json(KEY_LABELS, &["1", "2"]);
    ck.set_json(KEY_CONFIG, &Config { epochs: 3, lr: 1e-3, quant: Some("w4a8".into()) });
    ck.set_json(KEY_STATE, &serde_json::json!({"epoch": 2, "step": 300, "rng": [1, 2]}));
    for k in ["zeta", "alpha", "mid", "unicode \u{e9}\u{2013}\"quoted\""] {
        ck.meta.insert(k.into(), format!("value of {k}\n"));
    }
    ck
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let all = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
    all.filter(|p| p.extension().is_some_and(|e| e == "tmp")).collect()
}

#[test]
fn round_trip_f32_i32_and_metadata() {
    let dir = tmp();
    let path = dir.path().join("a.safetensors");
    let ck = sample();
    ck.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(back, ck);
    // Bit-exact, including -0.0 and subnormals (NaN is refused on reading).
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(back.f32("c1.w").unwrap().1), bits(ck.f32("c1.w").unwrap().1));
    assert_eq!(back.i32("q.c1.w.exp"), Some((&[2usize][..], &[-7, i32::MAX][..])));
    assert_eq!(back.f32("q.c1.w.exp"), None, "an i32 tensor is not returned as f32");
    assert_eq!(back.f32("scalar"), Some((&[][..], &[42.0f32][..])));
}

#[test]
fn from_bytes_reads_what_load_reads() {
    let dir = tmp();
    let path = dir.path().join("a.safetensors");
    sample().save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(Checkpoint::from_bytes(&path, &bytes).unwrap(), Checkpoint::load(&path).unwrap());
    let e = Checkpoint::from_bytes(Path::new("m.safetensors"), &bytes[..9]).unwrap_err();
    assert!(e.to_string().starts_with("m.safetensors: "), "{e}");
}

#[test]
fn typed_json_metadata() {
    let ck = sample();
    let labels: Vec<String> = ck.json(KEY_LABELS).unwrap().unwrap();
    assert_eq!(labels, ["1", "2"]);
    let config: Config = ck.json(KEY_CONFIG).unwrap().unwrap();
    assert_eq!(config, Config { epochs: 3, lr: 1e-3, quant: Some("w4a8".into()) });
    assert_eq!(ck.json::<Config>("history").unwrap(), None);
    let err = ck.json::<Config>(KEY_LABELS).unwrap_err();
    assert!(matches!(err, CkptError::Json { .. }));
    assert!(err.to_string().contains("`labels`"), "{err}");
    let err = err.in_file(Path::new("run/model.safetensors"));
    assert!(err.to_string().starts_with("run/model.safetensors: metadata `labels`"), "{err}");
}

#[test]
fn resave_is_byte_identical() {
    let dir = tmp();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    let ck = sample();
    ck.save(&a).unwrap();
    Checkpoint::load(&a).unwrap().save(&b).unwrap();
    // The same content built in another order.
    let mut other = Checkpoint::default();
    for (k, v) in ck.meta.iter().rev() {
        other.meta.insert(k.clone(), v.clone());
    }
    for (k, t) in ck.tensors.iter().rev() {
        other.tensors.insert(k.clone(), t.clone());
    }
    other.save(&c).unwrap();
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap());
    assert_eq!(bytes, std::fs::read(&c).unwrap());
    for _ in 0..5 {
        ck.save(&b).unwrap();
        assert_eq!(bytes, std::fs::read(&b).unwrap());
    }
}

/// With at most one metadata entry (where its `HashMap` cannot reorder), the
/// file equals the safetensors crate's own serialization; with many, that
/// crate reads our file back with every tensor and entry.
#[test]
fn conforms_to_the_safetensors_crate() {
    let dir = tmp();
    let path = dir.path().join("x.safetensors");
    let mut ck = sample();
    ck.meta.retain(|k, _| k == KEY_LABELS);
    ck.save(&path).unwrap();
    let bytes: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = ck
        .tensors
        .iter()
        .map(|(name, t)| match &t.data {
            TensorData::F32(v) => (
                name.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                Dtype::F32,
                t.shape.clone(),
            ),
            TensorData::I32(v) => (
                name.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                Dtype::I32,
                t.shape.clone(),
            ),
            TensorData::I8(v) => {
                (name.clone(), v.iter().map(|&x| x as u8).collect(), Dtype::I8, t.shape.clone())
            }
        })
        .collect();
    let views: Vec<(&str, TensorView)> = bytes
        .iter()
        .map(|(n, b, d, s)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta: HashMap<String, String> = ck.meta.clone().into_iter().collect();
    let theirs = safetensors::serialize(views, Some(meta)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), theirs);
    ck.meta.clear();
    ck.save(&path).unwrap();
    let views: Vec<(&str, TensorView)> = bytes
        .iter()
        .map(|(n, b, d, s)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    assert_eq!(std::fs::read(&path).unwrap(), safetensors::serialize(views, None).unwrap());

    let full = sample();
    full.save(&path).unwrap();
    let file = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&file).unwrap();
    assert_eq!(st.len(), full.tensors.len());
    let (_, md) = safetensors::SafeTensors::read_metadata(&file).unwrap();
    let meta: HashMap<String, String> = full.meta.clone().into_iter().collect();
    assert_eq!(md.metadata().as_ref(), Some(&meta));
}

#[test]
fn check_against_fcn_passes_with_all_params() {
    let g = example("fcn");
    let ck = full_checkpoint(&g);
    ck.check_against(&g).unwrap();
    assert_eq!(ck.meta[KEY_MODEL], "fcn");
    assert_eq!(ck.meta[KEY_MODEL_HASH], model_hash(&g));
    // And after a save and load, through `load_for`.
    let dir = tmp();
    let path = dir.path().join("fcn.safetensors");
    ck.save(&path).unwrap();
    assert_eq!(Checkpoint::load_for(&path, &g).unwrap(), ck);
}

#[test]
fn check_against_names_missing_wrong_shape_and_dtype() {
    let g = example("fcn");
    let mut ck = full_checkpoint(&g);
    ck.tensors.remove("c2.w");
    ck.insert_f32("b1.mean", vec![64], vec![0.0; 64]);
    ck.insert_i32("logits.b", vec![2], vec![0, 0]);
    let err = ck.check_against(&g).unwrap_err();
    let CkptError::Mismatch { problems, .. } = &err else { panic!("{err:?}") };
    assert_eq!(problems.len(), 3, "{problems:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("checkpoint: does not match model `fcn`:"), "{msg}");
    assert!(msg.contains("missing `c2.w` (the model expects f32[256, 128, 5])"), "{msg}");
    assert!(msg.contains("`b1.mean` has shape [64], the model expects [128]"), "{msg}");
    assert!(msg.contains("`logits.b` is i32, the model expects f32"), "{msg}");
    assert!(!msg.contains("c1.w"), "{msg}");

    // Saved for another model: said first.
    ck.meta.insert(KEY_MODEL.into(), "resnet".into());
    let msg = ck.check_against(&g).unwrap_err().to_string();
    assert!(msg.contains("\n  - the checkpoint is for model `resnet`, not `fcn`\n"), "{msg}");

    // The same name but other model text.
    ck.meta.insert(KEY_MODEL.into(), "fcn".into());
    ck.meta.insert(KEY_MODEL_HASH.into(), model_hash(&example("tiny")));
    let msg = ck.check_against(&g).unwrap_err().to_string();
    assert!(msg.contains("saved for a different model text"), "{msg}");

    // `load_for` names the file.
    let dir = tmp();
    let path = dir.path().join("bad.safetensors");
    ck.save(&path).unwrap();
    let msg = Checkpoint::load_for(&path, &g).unwrap_err().to_string();
    assert!(msg.starts_with(&format!("{}: does not match model `fcn`", path.display())), "{msg}");
}

#[test]
fn long_mismatch_lists_are_cut() {
    let g = example("resnet");
    let msg = Checkpoint::default().check_against(&g).unwrap_err().to_string();
    assert!(g.params().len() > 20);
    assert_eq!(msg.lines().count(), 22, "{msg}");
    assert!(msg.ends_with(&format!("... and {} more", g.params().len() - 20)), "{msg}");
}

#[test]
fn model_hash_is_sha256_of_the_canonical_text() {
    use sha2::{Digest, Sha256};
    let g = example("fcn");
    let h = model_hash(&g);
    assert_eq!(h.len(), 64);
    assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let expected: String =
        Sha256::digest(potc::ir::print(&g)).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(h, expected);
    assert_eq!(model_hash(&potc::syntax::parse(&potc::ir::print(&g)).unwrap()), h);
    assert_ne!(model_hash(&example("tiny")), h);
}

#[test]
fn failed_write_leaves_old_file_and_no_temp() {
    let dir = tmp();
    let path = dir.path().join("model.safetensors");
    sample().save(&path).unwrap();
    let old = std::fs::read(&path).unwrap();

    let err = write_atomic(&path, |w| {
        w.write_all(&vec![7u8; 100_000])?;
        Err(io::Error::other("disk full"))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    assert_eq!(std::fs::read(&path).unwrap(), old);
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());

    // A writer that panics midway.
    let caught = std::panic::catch_unwind(|| {
        let _ = write_atomic(&path, |w| {
            w.write_all(b"half a header")?;
            panic!("crash");
        });
    });
    assert!(caught.is_err());
    assert_eq!(std::fs::read(&path).unwrap(), old);
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());

    // The target cannot be replaced (it is a directory): the temp file goes.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert!(sample().save(&sub).is_err());
    assert!(sub.is_dir());
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn unwritable_tensor_fails_without_touching_the_old_file() {
    let dir = tmp();
    let path = dir.path().join("model.safetensors");
    sample().save(&path).unwrap();
    let old = std::fs::read(&path).unwrap();
    let mut bad = sample();
    bad.tensors
        .insert("z.w".into(), Tensor { shape: vec![2, 2], data: TensorData::F32(vec![1.0]) });
    let err = bad.save(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("`z.w`") && msg.contains("[2, 2]"), "{msg}");
    bad.tensors.remove("z.w");
    bad.insert_f32("__metadata__", vec![1], vec![0.0]);
    assert!(bad.save(&path).unwrap_err().to_string().contains("reserved"));
    assert_eq!(std::fs::read(&path).unwrap(), old);
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
}

#[test]
#[should_panic(expected = "tensor `c1.w`: shape [2, 3]")]
fn insert_with_wrong_length_panics() {
    Checkpoint::default().insert_f32("c1.w", vec![2, 3], vec![0.0; 5]);
}

fn load_err(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let msg = Checkpoint::load(&path).unwrap_err().to_string();
    assert!(msg.starts_with(&format!("{}: ", path.display())), "{msg}");
    msg
}

#[test]
fn load_errors_name_the_file() {
    let dir = tmp();
    let missing = dir.path().join("nope.safetensors");
    let err = Checkpoint::load(&missing).unwrap_err();
    assert!(matches!(err, CkptError::Missing { .. }));
    assert_eq!(err.to_string(), format!("{}: no such checkpoint file", missing.display()));

    let msg = load_err(dir.path(), "garbage", b"this is certainly not a checkpoint file");
    assert!(msg.contains("not a safetensors file"), "{msg}");
    let msg = load_err(dir.path(), "empty", b"");
    assert!(msg.contains("not a safetensors file: the file is empty"), "{msg}");
    let msg = load_err(dir.path(), "short", b"abc");
    assert!(msg.contains("not a safetensors file"), "{msg}");
    let mut json_garbage = 16u64.to_le_bytes().to_vec();
    json_garbage.extend(b"{not json at all");
    let msg = load_err(dir.path(), "badjson", &json_garbage);
    assert!(msg.contains("not a safetensors file"), "{msg}");

    let path = dir.path().join("good");
    sample().save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let msg = load_err(dir.path(), "cut_data", &good[..good.len() - 10]);
    assert!(msg.contains(": truncated: the header describes"), "{msg}");
    let msg = load_err(dir.path(), "cut_header", &good[..40]);
    assert!(msg.contains(": truncated: the header needs"), "{msg}");
    let mut longer = good.clone();
    longer.extend([0; 4]);
    let msg = load_err(dir.path(), "trailing", &longer);
    assert!(msg.contains("not a safetensors file"), "{msg}");
}

#[test]
fn unsupported_dtype_names_the_tensor() {
    let dir = tmp();
    let data = 1.0f64.to_le_bytes();
    let view = TensorView::new(Dtype::F64, vec![1], &data).unwrap();
    let bytes = safetensors::serialize([("b1.var", view)], None).unwrap();
    let msg = load_err(dir.path(), "f64.safetensors", &bytes);
    assert!(msg.contains("tensor `b1.var` has dtype F64"), "{msg}");
}

/// NaN or infinite values used to load silently (and `eval`, `--init`,
/// `--resume` and `lower` went on with them): refused with the file and
/// the tensor named.
#[test]
fn non_finite_tensors_are_refused() {
    let dir = tmp();
    for (bad, shown) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf"), (f32::NEG_INFINITY, "-inf")] {
        let mut ck = sample();
        ck.insert_f32("b1.var", vec![3], vec![1.0, bad, 2.0]);
        let path = dir.path().join("bad.safetensors");
        ck.save(&path).unwrap();
        let msg = Checkpoint::load(&path).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "{}: tensor `b1.var` holds {shown} (at index 1); every value must be finite",
                path.display()
            )
        );
    }
}

/// A write killed between creating its temporary file and the rename left
/// `.NAME.PID-N.tmp` for good; the next write of the same target removes
/// those of ended processes, and keeps this process's (a write that may be
/// in progress) and other targets'.
#[cfg(target_os = "linux")]
#[test]
fn stale_temp_files_of_the_target_are_removed() {
    let dir = tmp();
    let path = dir.path().join("ck.safetensors");
    // Beyond Linux's largest process id: no such process runs.
    let stale = dir.path().join(".ck.safetensors.999999999-0.tmp");
    let own = dir.path().join(format!(".ck.safetensors.{}-999.tmp", std::process::id()));
    let other = dir.path().join(".other.safetensors.999999999-0.tmp");
    for f in [&stale, &own, &other] {
        std::fs::write(f, b"partial").unwrap();
    }
    sample().save(&path).unwrap();
    let mut left = temp_files(dir.path());
    left.sort();
    let mut want = vec![own, other];
    want.sort();
    assert_eq!(left, want);
}
