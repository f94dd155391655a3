//! The `potc` binary as scripts see it: exit codes, where output goes, and
//! the diagnostics' `file:line:col` (../shared/spec/cli.md).

use std::process::{Command, Output};

fn potc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_potc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_accepts_every_example() {
    for m in ["fcn", "resnet", "basicmotions", "tiny"] {
        let out = potc(&["check", &format!("examples/{m}.pot")]);
        assert!(out.status.success(), "{m}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("ok"));
    }
}

#[test]
fn bad_model_exits_1_with_file_line_col() {
    let dir = std::env::temp_dir().join(format!("potc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.pot");
    std::fs::write(&bad, "model\n  oops(\n").unwrap();
    let out = potc(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("bad.pot:2:"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());

    let binary = dir.join("binary.pot");
    std::fs::write(&binary, b"model m(%x: [1, 4]) {\n  \xff\xfe\n}\n").unwrap();
    let out = potc(&["check", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("binary.pot:2:3: error: the file is not UTF-8"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_file_and_bad_flags_exit_1() {
    let out = potc(&["check", "no/such/file.pot"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no/such/file.pot: error: cannot read"));
    assert_eq!(potc(&["print", "examples/fcn.pot", "--no-such-flag"]).status.code(), Some(1));
    assert_eq!(potc(&["no-such-command"]).status.code(), Some(1));
    assert_eq!(potc(&[]).status.code(), Some(1));
}

#[test]
fn unknown_pass_lists_the_valid_ones() {
    let out = potc(&["print", "examples/fcn.pot", "--passes", "canonicalize,fold-everything"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown pass `fold-everything`")
            && err.contains("known passes: canonicalize"),
        "{err}"
    );
}

#[test]
fn help_on_every_command() {
    for cmd in
        [vec!["--help"], vec!["check", "--help"], vec!["print", "--help"], vec!["passes", "--help"]]
    {
        let out = potc(&cmd);
        assert!(out.status.success(), "{cmd:?}");
        assert!(text(&out.stdout).contains("Usage"), "{cmd:?}");
    }
}

#[test]
fn print_round_trips_and_print_after_all_names_each_pass() {
    let out = potc(&["print", "examples/basicmotions.pot"]);
    assert!(out.status.success());
    let once = text(&out.stdout);
    let dir = std::env::temp_dir().join(format!("potc-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.pot");
    std::fs::write(&path, &once).unwrap();
    let twice = text(&potc(&["print", path.to_str().unwrap()]).stdout);
    assert_eq!(once, twice);
    std::fs::remove_dir_all(&dir).unwrap();

    let out = potc(&[
        "print",
        "examples/basicmotions.pot",
        "--passes",
        "canonicalize",
        "--print-after-all",
    ]);
    let shown = text(&out.stdout);
    assert!(shown.starts_with("// *** IR after parse ***\n"), "{shown}");
    assert!(shown.contains("\n// *** IR after canonicalize ***\n"), "{shown}");
    assert_eq!(shown.matches("dropout").count(), 1, "dropout is shown before canonicalize only");
}

#[test]
fn passes_lists_and_describes() {
    let out = potc(&["passes"]);
    assert!(text(&out.stdout).contains("canonicalize"));
    let out = potc(&["passes", "canonicalize"]);
    assert!(text(&out.stdout).contains("Before:"));
    assert_eq!(potc(&["passes", "nope"]).status.code(), Some(1));
}

#[test]
fn print_with_weights_folds_and_summarises_them() {
    let dir = std::env::temp_dir().join(format!("potc-pw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = dir.join("tiny.safetensors");
    let data = "examples/data/GunPoint_TRAIN.ts";
    let out = potc(&[
        "train",
        "examples/tiny.pot",
        "--train",
        data,
        "--test",
        data,
        "-o",
        ck.to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = potc(&[
        "print",
        "examples/tiny.pot",
        "--passes",
        "fold-bn",
        "--weights",
        ck.to_str().unwrap(),
    ]);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(shown.contains("//   b.w: f32[4, 1, 3] in ["), "{shown}");
    let out = potc(&["print", "examples/fcn.pot", "--weights", ck.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not match model `fcn`"), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A QAT checkpoint of `examples/tiny.pot` on GunPoint (no epochs) in `dir`.
fn tiny_qat(dir: &std::path::Path) -> String {
    let ck = dir.join("q.safetensors").to_str().unwrap().to_string();
    let (train, test) = ("examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
    let args = ["train", "examples/tiny.pot", "--train", train, "--test", test, "-o", &ck];
    let out = potc(&[&args[..], &["--quant", "w8a8", "--epochs", "0"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    ck
}

/// Runs `potc args` expecting exit 1 and no panic; its standard error.
fn fails(args: &[&str]) -> String {
    let out = potc(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Bad metadata in a checkpoint names the file and the key: a `quant`
/// entry out of range used to surface as "a bug in potc", bad `labels`
/// named no file.
#[test]
fn bad_checkpoint_metadata_names_the_file() {
    use potc::ckpt::Checkpoint;
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_qat(dir.path());
    let good = Checkpoint::load(std::path::Path::new(&ck)).unwrap();
    let eval = [
        "eval",
        "examples/tiny.pot",
        "--weights",
        &ck,
        "--data",
        "examples/data/GunPoint_TEST.ts",
        "--mode",
        "fake-quant",
    ];
    for (key, value, want) in [
        (
            "quant",
            r#"{"w_bits":99,"a_bits":8,"per_channel":true,"scales":"learned","bn":"fold-sim"}"#,
            "metadata `quant`: `w_bits` is 99",
        ),
        ("quant", "[1]", "metadata `quant` is not the expected JSON"),
        ("labels", "5", "metadata `labels` is not the expected JSON"),
    ] {
        let mut bad = good.clone();
        bad.meta.insert(key.into(), value.into());
        bad.save(std::path::Path::new(&ck)).unwrap();
        let err = fails(&eval);
        assert!(
            err.lines().any(|l| l.starts_with(&format!("{ck}: ")) && l.contains(want)),
            "{err}"
        );
        assert!(!err.contains("bug in potc"), "{err}");
    }
}

/// A threshold far out of range reached `potc lower` as "internal: left
/// shift 99 exceeds 62"; it is now the checkpoint's thresholds that are
/// named.
#[test]
fn thresholds_out_of_range_are_named_by_lower() {
    use potc::ckpt::Checkpoint;
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_qat(dir.path());
    let mut c = Checkpoint::load(std::path::Path::new(&ck)).unwrap();
    let names: Vec<String> =
        c.tensors.keys().filter(|n| n.starts_with("x.") && n.ends_with("log2t")).cloned().collect();
    assert!(!names.is_empty(), "the input quantizer's threshold");
    for n in names {
        c.insert_f32(n, vec![1], vec![90.0]);
    }
    c.save(std::path::Path::new(&ck)).unwrap();
    let out = dir.path().join("int");
    let err = fails(&["lower", "examples/tiny.pot", "--weights", &ck, "-o", out.to_str().unwrap()]);
    assert!(err.lines().any(|l| l.starts_with(&format!("{ck}: error: its thresholds"))), "{err}");
    assert!(!err.contains("internal"), "{err}");
}

/// A 100,000-character label or source line is not echoed whole.
#[test]
fn huge_labels_and_lines_are_clipped_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_qat(dir.path());
    let data = dir.path().join("long.tsv");
    let label = "z".repeat(100_000);
    let row: Vec<String> = (0..150).map(|i| format!("{}", i as f32 / 150.0)).collect();
    std::fs::write(&data, format!("{label}\t{}\n", row.join("\t"))).unwrap();
    let err = fails(&[
        "eval",
        "examples/tiny.pot",
        "--weights",
        &ck,
        "--data",
        data.to_str().unwrap(),
        "--mode",
        "fake-quant",
    ]);
    assert!(
        err.contains("label `zzzz") && err.len() < 1000,
        "{} bytes: {}",
        err.len(),
        &err[..300]
    );

    let model = dir.path().join("long.pot");
    let op = "q".repeat(100_000);
    std::fs::write(&model, format!("model m(%x: [1, 4]) {{\n  %y = {op}(%x)\n  return %y\n}}\n"))
        .unwrap();
    let err = fails(&["check", model.to_str().unwrap()]);
    assert!(
        err.contains("long.pot:2:8: error: unknown op `qqqq") && err.len() < 1000,
        "{} bytes: {}",
        err.len(),
        &err[..300]
    );
}
