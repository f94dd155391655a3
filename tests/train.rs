//! Float training end to end: the tiny model learns a separable problem,
//! runs are deterministic, `--resume` continues exactly, and `eval` agrees
//! with `train`.

use clap::Parser;
use potc::data::Dataset;
use potc::driver::{self, EvalOptions, TrainOptions};
use potc::interp::Plan;
use potc::syntax;
use potc::train::{evaluate, fit, init_weights, Optimizer, Schedule, TrainConfig, TrainState};
use std::path::PathBuf;

/// Class 0: a slow sine; class 1: a fast one; random phases.
fn separable(n: usize, length: usize, seed: u64) -> Dataset {
    let mut x = vec![];
    let mut y = vec![];
    for i in 0..n {
        let class = i % 2;
        let freq = if class == 0 { 1.0 } else { 4.0 };
        let phase = ((i as u64 * 2654435761 + seed) % 628) as f32 / 100.0;
        x.extend(
            (0..length)
                .map(|t| (freq * t as f32 * std::f32::consts::TAU / length as f32 + phase).sin()),
        );
        y.push(class);
    }
    Dataset {
        x,
        y,
        n,
        channels: 1,
        length,
        labels: vec!["slow".into(), "fast".into()],
        origin: (1..=n).collect(),
        path: "synthetic".into(),
    }
}

#[test]
fn tiny_learns_a_separable_set() {
    let g = syntax::parse(include_str!("../examples/tiny.pot")).unwrap();
    let plan = Plan::new(&g).unwrap();
    let cfg = TrainConfig {
        epochs: 30,
        batch_size: 8,
        lr: 1e-2,
        weight_decay: 0.0,
        threshold_lr: None,
        seed: 3,
        threads: 1,
        optimizer: Optimizer::adam(),
        schedule: Schedule::Constant,
        freeze_bn: None,
        keep: potc::train::Keep::Last,
    };
    let (train, test) = (separable(32, 16, 1), separable(32, 16, 99));
    let mut w = init_weights(&plan.params, cfg.seed);
    let mut st = TrainState::new(&plan, &cfg);
    fit(&plan, &mut w, &mut st, &train, &test, &cfg, |_, _| Ok::<(), potc::train::Diverged>(()))
        .unwrap();
    assert_eq!(evaluate(&plan, &w, &train, 1).accuracy, 1.0, "{:?}", st.history.last());
    assert_eq!(evaluate(&plan, &w, &test, 1).accuracy, 1.0);
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("potc-train-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn train_opts(out: &std::path::Path, extra: &[&str]) -> TrainOptions {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        o: TrainOptions,
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let mut args = vec![
        "potc".to_string(),
        format!("{root}/examples/tiny.pot"),
        "--train".into(),
        format!("{root}/examples/data/GunPoint_TRAIN.ts"),
        "--test".into(),
        format!("{root}/examples/data/GunPoint_TRAIN.ts"),
        "-o".into(),
        out.display().to_string(),
        "--threads".into(),
        "2".into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(args).o
}

#[test]
fn same_seed_same_bytes_and_resume_continues_exactly() {
    let d = dir("det");
    let (a, b, c) = (d.join("a.safetensors"), d.join("b.safetensors"), d.join("c.safetensors"));
    driver::train(&train_opts(&a, &["--epochs", "4", "--seed", "5"])).unwrap();
    driver::train(&train_opts(&b, &["--epochs", "4", "--seed", "5"])).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same seed, same bytes");

    // Interrupted after 2 epochs, then resumed to 4.
    driver::train(&train_opts(&c, &["--epochs", "2", "--seed", "5"])).unwrap();
    let resumed =
        driver::train(&train_opts(&c, &["--epochs", "4", "--seed", "5", "--resume"])).unwrap();
    assert!(resumed.contains("\"epochs\":4"), "{resumed}");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap(), "resumed == uninterrupted");

    let other = d.join("o.safetensors");
    driver::train(&train_opts(&other, &["--epochs", "4", "--seed", "6"])).unwrap();
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&other).unwrap(), "the seed matters");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn eval_agrees_with_train_and_plots_are_written() {
    let d = dir("eval");
    let ck = d.join("m.safetensors");
    let out = driver::train(&train_opts(&ck, &["--epochs", "2", "--plot"])).unwrap();
    let trained: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["test_accuracy", "train_seconds", "samples_per_second", "epochs"] {
        assert!(trained.get(key).is_some(), "train --json lacks {key}: {out}");
    }
    let svg = std::fs::read_to_string(d.join("m.safetensors.curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("accuracy"));

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        o: EvalOptions,
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let data = format!("{root}/examples/data/GunPoint_TRAIN.ts");
    let model = format!("{root}/examples/tiny.pot");
    let args = ["potc", &model, "--weights", ck.to_str().unwrap(), "--data", &data, "--json"];
    let evaluated: serde_json::Value =
        serde_json::from_str(&driver::eval(&Cli::parse_from(args).o).unwrap()).unwrap();
    assert_eq!(evaluated["accuracy"], trained["test_accuracy"]);
    assert_eq!(evaluated["n"], 50);
    assert_eq!(evaluated["mode"], "float");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn mismatched_models_and_data_are_refused() {
    let d = dir("bad");
    let root = env!("CARGO_MANIFEST_DIR");
    let mut o = train_opts(&d.join("x.safetensors"), &["--epochs", "1"]);
    o.model = format!("{root}/examples/basicmotions.pot");
    let e = driver::train(&o).unwrap_err().0;
    assert!(e.contains("GunPoint_TRAIN.ts") && e.contains("4"), "{e}");

    // A checkpoint of one model is refused for another.
    let ck = d.join("tiny.safetensors");
    driver::train(&train_opts(&ck, &["--epochs", "1"])).unwrap();
    let mut o =
        train_opts(&d.join("y.safetensors"), &["--epochs", "1", "--init", ck.to_str().unwrap()]);
    o.model = format!("{root}/examples/fcn.pot");
    let e = driver::train(&o).unwrap_err().0;
    assert!(e.contains("tiny.safetensors") && e.contains("missing"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// The checkpoint holds the weights of the lowest training loss (its epoch
/// in `kept_epoch`, the last epoch's under `last.`); `--keep last` the last
/// epoch's; the rate defaults to 1e-3, to 1e-4 when fine-tuning, and a
/// resumed run takes a new `--lr`.
#[test]
fn kept_weights_and_rate_defaults() {
    use potc::ckpt::Checkpoint;
    let d = dir("keep");
    let json = |o: TrainOptions| -> serde_json::Value {
        serde_json::from_str(&driver::train(&o).unwrap()).unwrap()
    };
    let best = d.join("best.safetensors");
    let got = json(train_opts(&best, &["--epochs", "12", "--lr", "0.3"]));
    let ck = Checkpoint::load(&best).unwrap();
    let history: Vec<serde_json::Value> =
        serde_json::from_str(ck.meta.get("history").unwrap()).unwrap();
    let losses: Vec<f64> = history.iter().map(|e| e["loss"].as_f64().unwrap()).collect();
    let lowest = (0..losses.len()).min_by(|&a, &b| losses[a].total_cmp(&losses[b])).unwrap();
    assert_eq!(got["kept_epoch"], lowest + 1, "{losses:?}");
    assert!(ck.f32("last.c.w").is_some() && ck.f32("c.w").is_some());
    if lowest + 1 != 12 {
        assert_ne!(ck.f32("last.c.w").unwrap().1, ck.f32("c.w").unwrap().1);
    }

    let last = d.join("last.safetensors");
    let got = json(train_opts(&last, &["--epochs", "3", "--keep", "last"]));
    assert_eq!((got["kept_epoch"].as_u64(), got["lr"].as_f64()), (Some(3), Some(1e-3f32 as f64)));
    assert!(Checkpoint::load(&last).unwrap().f32("last.c.w").is_none());

    let fine = d.join("fine.safetensors");
    let got = json(train_opts(&fine, &["--epochs", "1", "--init", last.to_str().unwrap()]));
    assert_eq!(got["lr"].as_f64(), Some(1e-4f32 as f64));
    let got = json(train_opts(&fine, &["--epochs", "2", "--resume"]));
    assert_eq!(got["lr"].as_f64(), Some(1e-4f32 as f64), "a resumed run keeps its rate");
    let got = json(train_opts(&fine, &["--epochs", "3", "--resume", "--lr", "0.01"]));
    assert_eq!(got["lr"].as_f64(), Some(0.01f32 as f64));
    std::fs::remove_dir_all(&d).unwrap();
}

/// Precise batch-norm statistics depend on the weights and the data only:
/// whatever the running statistics were before, the same ones come out.
#[test]
fn precise_statistics_forget_the_running_ones() {
    use potc::train::fit::precise_bn;
    let g = syntax::parse(include_str!("../examples/tiny.pot")).unwrap();
    let plan = Plan::new(&g).unwrap();
    let ds = separable(40, 16, 1);
    let w = init_weights(&plan.params, 3);
    let stats: Vec<usize> = (0..plan.params.len())
        .filter(|&i| {
            plan.params[i].name.ends_with(".mean") || plan.params[i].name.ends_with(".var")
        })
        .collect();
    assert_eq!(stats.len(), 2);
    let (mut a, mut b) = (w.clone(), w.clone());
    for &i in &stats {
        b[i].iter_mut().for_each(|v| *v = 1e6);
    }
    precise_bn(&plan, &mut a, &ds, 16, 1);
    precise_bn(&plan, &mut b, &ds, 16, 1);
    for &i in &stats {
        assert_eq!(a[i], b[i], "{}", plan.params[i].name);
        assert_ne!(a[i], w[i], "{} changed", plan.params[i].name);
    }
}

/// `.ts` text of `n` series of `length` zeros, classes `a` and `b`.
fn long_series(n: usize, length: usize) -> String {
    let mut s = format!("@problemName long\n@univariate true\n@equalLength true\n@seriesLength {length}\n@classLabel true a b\n@data\n");
    for i in 0..n {
        s += &"0,".repeat(length - 1);
        s += if i % 2 == 0 { "0:a\n" } else { "0:b\n" };
    }
    s
}

/// Two series of 10^6 steps made the FCN's im2col ask for 5 GB; long
/// series are refused before any work, naming the layer and the size, and
/// a training batch too large for the buffers names the batch that fits.
#[test]
fn buffers_beyond_the_limit_are_refused_with_their_size() {
    let d = dir("long");
    let root = env!("CARGO_MANIFEST_DIR");
    let data = d.join("long.ts");
    std::fs::write(&data, long_series(2, 1_000_000)).unwrap();
    let mut o = train_opts(&d.join("x.safetensors"), &["--epochs", "1"]);
    o.model = format!("{root}/examples/fcn.pot");
    (o.train, o.test) = (data.display().to_string(), data.display().to_string());
    let e = driver::train(&o).unwrap_err().0;
    assert!(e.contains("fcn.pot: error: `%c3` needs 3.1 GB for a single sample"), "{e}");

    std::fs::write(&data, long_series(20, 100_000)).unwrap();
    o.batch_size = 16;
    let e = driver::train(&o).unwrap_err().0;
    assert!(e.contains("a batch of 16 samples needs 4.9 GB at `%c3`"), "{e}");
    assert!(e.contains("at most 6 samples fit"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Flags that can only train to NaN are refused (`--lr 1e30` and
/// `--weight-decay nan` used to write a NaN checkpoint with exit 0).
#[test]
fn rates_out_of_range_are_refused() {
    let d = dir("flags");
    let out = d.join("x.safetensors");
    for (flag, value, want) in [
        ("--lr", "1e30", "--lr must lie in (0, 10], not 1000000000000000000000000000000"),
        ("--lr", "nan", "--lr must lie in (0, 10], not NaN"),
        ("--weight-decay", "nan", "--weight-decay must lie in [0, 1], not NaN"),
        ("--threshold-lr", "inf", "--threshold-lr must lie in (0, 10], not inf"),
        ("--momentum", "1.5", "--momentum must lie in [0, 1), not 1.5"),
    ] {
        let e = driver::train(&train_opts(&out, &["--epochs", "1", flag, value])).unwrap_err().0;
        assert!(e.contains(want), "{flag} {value}: {e}");
    }
    assert!(!out.exists());
    std::fs::remove_dir_all(&d).unwrap();
}

/// A loss that stops being finite stops training with an error, before the
/// epoch's weights reach the checkpoint.
#[test]
fn a_diverging_run_stops_without_saving() {
    let g = syntax::parse(include_str!("../examples/tiny.pot")).unwrap();
    let plan = Plan::new(&g).unwrap();
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 8,
        lr: 1e30,
        weight_decay: 0.0,
        threshold_lr: None,
        seed: 3,
        threads: 1,
        optimizer: Optimizer::Sgd { momentum: 0.0 },
        schedule: Schedule::Constant,
        freeze_bn: None,
        keep: potc::train::Keep::Last,
    };
    let data = separable(32, 16, 1);
    let mut w = init_weights(&plan.params, cfg.seed);
    let mut st = TrainState::new(&plan, &cfg);
    let mut saved = 0;
    let e = fit(&plan, &mut w, &mut st, &data, &data, &cfg, |_, _| {
        saved += 1;
        Ok::<(), potc::train::Diverged>(())
    })
    .unwrap_err();
    assert_eq!(saved, 0, "{e}");
    assert_eq!(e.epoch, 1);
    let msg = e.to_string();
    assert!(msg.contains("no longer a finite number") && msg.contains("--lr"), "{msg}");
}

/// `-o` naming the training data used to overwrite it after training, and
/// an unwritable `-o` was reported only after the last epoch: both are
/// refused before any work.
#[test]
fn the_output_is_checked_before_training() {
    let d = dir("out");
    let data = d.join("train.ts");
    std::fs::copy(format!("{}/examples/data/GunPoint_TRAIN.ts", env!("CARGO_MANIFEST_DIR")), &data)
        .unwrap();
    let before = std::fs::read(&data).unwrap();
    let mut o = train_opts(&data, &["--epochs", "1"]);
    o.train = data.display().to_string();
    let e = driver::train(&o).unwrap_err().0;
    assert!(e.contains("train.ts: error: is the --train data; -o would overwrite it"), "{e}");
    assert_eq!(std::fs::read(&data).unwrap(), before);

    let nowhere = d.join("missing-dir").join("x.safetensors");
    let e = driver::train(&train_opts(&nowhere, &["--epochs", "1"])).unwrap_err().0;
    assert!(e.contains("x.safetensors: error: cannot write a file there"), "{e}");
    let e = driver::train(&train_opts(&d, &["--epochs", "1"])).unwrap_err().0;
    assert!(e.contains("error: is a directory"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}
