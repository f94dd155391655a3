//! No input makes potc panic: random bytes, random token soup and randomly
//! mutated examples go through the parser, the verifier and canonicalize.
//! Every rejection must carry a source location; every acceptance must
//! round-trip through the printer.
//!
//! Below them, one bolero fuzz target per parser of user input (model text,
//! `.ts`, `.tsv`, `.npz`, checkpoints, program directories, ONNX models), seeded from
//! `tests/fuzz/corpus/`; `scripts/fuzz.sh` runs them for longer.

use potc::ir::{print, verify};
use potc::pass::PassManager;
use potc::passes::registry;
use potc::syntax;
use proptest::prelude::*;

const EXAMPLES: [&str; 4] = [
    include_str!("../examples/fcn.pot"),
    include_str!("../examples/resnet.pot"),
    include_str!("../examples/basicmotions.pot"),
    include_str!("../examples/tiny.pot"),
];

/// Fragments that reach deep parser and checker states when spliced in.
const FRAGMENTS: [&str; 32] = [
    "model",
    "return",
    "%x",
    "%y",
    "%c1",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    "=",
    ":",
    "/*",
    "*/",
    "//",
    "conv1d",
    "add",
    "linear",
    "same",
    "true",
    "-1",
    "0",
    "1",
    "4294967296",
    "99999999999999999999",
    "1e309",
    "0.5",
    "f32",
    "i8",
    "\u{fffd}",
];

fn exercise(src: &str) {
    match syntax::parse(src) {
        Ok(mut g) => {
            verify(&g).expect("a parsed graph verifies");
            let text = print(&g);
            let back = syntax::parse(&text).expect("printed IR parses back");
            assert_eq!(back, g);
            let registry = registry();
            let pipeline = registry.pipeline("canonicalize").unwrap();
            PassManager { allow_meaning_changes: false }
                .run(&pipeline, &mut g, &mut Default::default(), |_| {})
                .unwrap();
        }
        Err(d) => {
            assert!(d.span.is_some(), "every text error has a place: {d:?}");
            let shown = d.render("f.pot", src);
            assert!(shown.starts_with("f.pot:"), "{shown}");
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Number { at: usize, value: i64 },
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop_oneof![
        prop::sample::select(&FRAGMENTS[..]).prop_map(str::to_string),
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        (any::<usize>(), 1usize..12).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), text).prop_map(|(at, text)| Edit::Insert { at, text }),
        (
            any::<usize>(),
            prop_oneof![Just(0i64), Just(-1), Just(i64::MAX), Just(1 << 31), -3i64..300]
        )
            .prop_map(|(at, value)| Edit::Number { at, value }),
    ]
}

fn boundary(s: &str, at: usize) -> usize {
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(src: &mut String, e: &Edit) {
    match e {
        Edit::Delete { at, len } => {
            let a = boundary(src, *at);
            let b = boundary(src, a + len).max(a);
            src.replace_range(a..b, "");
        }
        Edit::Insert { at, text } => {
            let a = boundary(src, *at);
            src.insert_str(a, text);
        }
        Edit::Number { at, value } => {
            // Replace the integer literal nearest after `at`, if any.
            let a = boundary(src, *at);
            if let Some(start) = src[a..].find(|c: char| c.is_ascii_digit()).map(|i| a + i) {
                let end = src[start..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(src.len(), |i| start + i);
                src.replace_range(start..end, &value.to_string());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soup_never_panics(parts in prop::collection::vec(prop::sample::select(&FRAGMENTS[..]), 0..64)) {
        exercise(&parts.join(" "));
    }

    #[test]
    fn mutated_examples_never_panic(which in 0..EXAMPLES.len(), edits in prop::collection::vec(edit(), 1..5)) {
        let mut src = EXAMPLES[which].to_string();
        for e in &edits {
            apply(&mut src, e);
        }
        exercise(&src);
    }
}

// ------------------------------------------------------------------ bolero targets
//
// One target per parser of user input, each a plain `#[test]` driven by
// bolero's random engine on stable Rust (and by libFuzzer/AFL under
// `cargo bolero`). A case is either raw bytes or a seed from
// `tests/fuzz/corpus/<target>/` with a few byte-level edits, so that most
// cases get past the first magic number. Every seed runs unchanged first.
// `cargo test` runs a short smoke; `BOLERO_RANDOM_ITERATIONS=N` (what
// `scripts/fuzz.sh` sets) runs N random cases per target.

use potc::backend::interp::IntInterpreter;
use potc::backend::jit::{JitOptions, JitProgram};
use potc::ckpt::Checkpoint;
use potc::interp::Plan;
use potc::ir::Graph;
use potc::program::IntProgram;
use potc::train::checkpoint::{labels, resume_weights, train_state, weights};
use potc::train::{TrainConfig, TrainState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Random cases per target in a plain `cargo test` (the corpus runs too).
const SMOKE_CASES: usize = 500;
/// The longest raw input bolero generates.
const MAX_INPUT: usize = 1024;
/// One case slower than this is reported as a hang (debug builds included).
const SLOW_CASE: Duration = Duration::from_secs(10);
/// A program whose values hold more integers than this is checked and
/// compiled but not run: the fuzzer makes inputs, not data sets.
const MAX_RUN_ELEMENTS: u64 = 1 << 16;

/// One allocation above this aborts the fuzz binary: no input of a few
/// kilobytes may make potc ask for that much at once.
const MAX_ALLOCATION: usize = 512 << 20;

struct Bounded;

// SAFETY: forwards to the system allocator; refusing a request (null) is
// allowed by the `GlobalAlloc` contract.
unsafe impl std::alloc::GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        // SAFETY: same layout, same contract.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        // SAFETY: same layout, same contract.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

/// Byte strings spliced in by the `insert` edit: numbers at the edges of
/// every integer type, missing values, separators and JSON punctuation.
const TOKENS: [&[u8]; 40] = [
    b"0",
    b"-1",
    b"1",
    b"2147483647",
    b"2147483648",
    b"4294967296",
    b"18446744073709551616",
    b"99999999999999999999",
    b"1e309",
    b"-0",
    b"0.5",
    b"NaN",
    b"inf",
    b"?",
    b"-",
    b",",
    b":",
    b"\n",
    b"\t",
    b" ",
    b"@",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b"true",
    b"false",
    b"null",
    b"\xff",
    b"\0",
    b"%x",
    b"(",
    b")",
    b"=",
    b"[1,2]",
    b"\"F32\"",
    b"\"I32\"",
    b"\"I64\"",
    b"@classLabel",
];
const BYTES: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, 0xfe, b'0', b'9'];
const WORDS: [u32; 8] = [0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX, 0xffff, 0x1_0000, 8];

/// The inputs of one target: files (program: directories of files).
type Case = Vec<Vec<u8>>;

/// A target: its seeds and the number of cases it ran.
struct Target {
    name: &'static str,
    seeds: Vec<Case>,
    cases: AtomicU64,
    /// Cases that passed every check of the target (went all the way).
    accepted: AtomicU64,
    slowest: std::sync::Mutex<Duration>,
    started: Instant,
}

impl Target {
    /// Reads `tests/fuzz/corpus/<name>/`: each file is one seed, or for a
    /// target of several files each directory holds `files`.
    fn new(name: &'static str, files: &[&str]) -> Target {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(name);
        let mut paths: Vec<PathBuf> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        let seeds: Vec<Case> = paths
            .iter()
            .map(|p| {
                if files.is_empty() {
                    vec![std::fs::read(p).unwrap()]
                } else {
                    files.iter().map(|f| std::fs::read(p.join(f)).unwrap()).collect()
                }
            })
            .collect();
        assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
        let seeds = if name == "npz" {
            seeds.into_iter().map(|s| npz_seed(s.concat())).collect()
        } else {
            seeds
        };
        Target {
            name,
            seeds,
            cases: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            slowest: Default::default(),
            started: Instant::now(),
        }
    }

    /// Runs every seed as it is, then `run` on the bolero input `data`.
    fn seeds(&self, run: &impl Fn(&Case) -> bool) {
        for s in &self.seeds {
            self.time(s, run);
        }
    }

    /// One bolero case.
    fn case(&self, data: &[u8], run: &impl Fn(&Case) -> bool) {
        let input = self.input(data);
        self.time(&input, run);
    }

    fn time(&self, input: &Case, run: &impl Fn(&Case) -> bool) {
        let t = Instant::now();
        let accepted = run(input);
        let took = t.elapsed();
        self.cases.fetch_add(1, Ordering::Relaxed);
        self.accepted.fetch_add(u64::from(accepted), Ordering::Relaxed);
        let mut slowest = self.slowest.lock().unwrap_or_else(|e| e.into_inner());
        *slowest = (*slowest).max(took);
        assert!(took < SLOW_CASE, "one case took {took:?}");
    }

    /// Raw bytes (first byte a multiple of 8), else a seed with edits.
    fn input(&self, data: &[u8]) -> Case {
        let parts = self.seeds[0].len();
        let Some((&mode, rest)) = data.split_first() else { return vec![vec![]; parts] };
        if mode % 8 == 0 {
            // Raw: several files are separated by a NUL byte pair.
            let mut out = vec![vec![]; parts];
            let mut chunks = split(rest, b"\0\0", parts);
            for o in &mut out {
                *o = chunks.next().unwrap_or_default().to_vec();
            }
            return out;
        }
        let Some((&which, edits)) = rest.split_first() else { return self.seeds[0].clone() };
        let mut out = self.seeds[usize::from(which) % self.seeds.len()].clone();
        // One edit half the time, two a quarter, ... at most six.
        let count = (mode >> 3).trailing_ones() as usize + 1;
        for e in edits.chunks_exact(5).take(count) {
            apply_bytes(&mut out, e);
        }
        out
    }

    fn report(&self) {
        let n = self.cases.load(Ordering::Relaxed);
        let took = self.started.elapsed();
        let slowest = *self.slowest.lock().unwrap_or_else(|e| e.into_inner());
        let accepted = self.accepted.load(Ordering::Relaxed);
        println!(
            "fuzz target {}: {n} cases ({} seeds, {accepted} accepted all the way) in {:.1} s, \
             {:.0} cases/s, slowest case {:.1} ms",
            self.name,
            self.seeds.len(),
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            slowest.as_secs_f64() * 1e3
        );
    }
}

/// At most `parts` pieces of `data` split at `sep` (the last takes the rest).
fn split<'a>(data: &'a [u8], sep: &'a [u8], parts: usize) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = Some(data);
    let mut left = parts;
    std::iter::from_fn(move || {
        let r = rest?;
        left -= 1;
        if left == 0 {
            rest = None;
            return Some(r);
        }
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                rest = Some(&r[i + sep.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// One edit `[op, pos, pos, pos, value]` of one file of `case`.
fn apply_bytes(case: &mut Case, e: &[u8]) {
    let part = usize::from(e[0] >> 4) % case.len();
    let f = &mut case[part];
    let at = (usize::from(e[1]) << 16 | usize::from(e[2]) << 8 | usize::from(e[3])) % (f.len() + 1);
    let v = e[4];
    match e[0] % 7 {
        0 if at < f.len() => f[at] = v,
        1 if at < f.len() => f[at] = BYTES[usize::from(v) % BYTES.len()],
        2 => {
            let t = TOKENS[usize::from(v) % TOKENS.len()];
            f.splice(at..at, t.iter().copied());
        }
        3 => {
            let end = (at + usize::from(v % 16) + 1).min(f.len());
            f.drain(at..end);
        }
        4 => {
            // Repeat a stretch: lengthens lists, rows, series.
            let end = (at + usize::from(v) + 1).min(f.len());
            let copy = f[at..end].to_vec();
            f.splice(at..at, copy);
        }
        5 => {
            let w = WORDS[usize::from(v) % WORDS.len()].to_le_bytes();
            let end = (at + 4).min(f.len());
            f.splice(at..end, w);
        }
        _ if at < f.len() => f[at] ^= 1 << (v % 8),
        _ => {}
    }
}

/// Runs the corpus, then bolero's cases, then prints the count.
macro_rules! fuzz_target {
    ($name:literal, $files:expr, $run:expr) => {{
        let target = Target::new($name, $files);
        let run = $run;
        target.seeds(&run);
        bolero::check!()
            .with_iterations(SMOKE_CASES)
            .with_max_len(MAX_INPUT)
            .for_each(|data: &[u8]| target.case(data, &run));
        target.report();
    }};
}

#[test]
fn model_text() {
    fuzz_target!("model_text", &[], |c: &Case| {
        let src = String::from_utf8_lossy(&c[0]);
        exercise(&src);
        syntax::parse(&src).is_ok_and(|g| Plan::new(&g).is_ok())
    });
}

fn data_set(name: &str, bytes: &[u8]) -> bool {
    let Ok(ds) = potc::data::load_bytes(name, bytes) else { return false };
    assert_eq!(ds.x.len(), ds.n * ds.channels * ds.length);
    assert_eq!(ds.y.len(), ds.n);
    assert_eq!(ds.origin.len(), ds.n);
    assert!(ds.y.iter().all(|&y| y < ds.labels.len()));
    assert!(ds.x.iter().all(|v| v.is_finite()));
    let mapping: Vec<String> = ds.labels.iter().rev().cloned().collect();
    let back = ds.clone().with_labels(&mapping).unwrap();
    assert_eq!(back.labels, mapping);
    let _ = ds.with_labels(&["1".into(), "2".into()]);
    true
}

#[test]
fn ts() {
    fuzz_target!("ts", &[], |c: &Case| data_set("f.ts", &c[0]));
}

#[test]
fn tsv() {
    fuzz_target!("tsv", &[], |c: &Case| data_set("f.tsv", &c[0]));
}

/// A stored zip of `x.npy` and `y.npy` (an empty one left out).
fn zip_members(x: &[u8], y: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in [("x.npy", x), ("y.npy", y)] {
        if !bytes.is_empty() {
            z.start_file(name, opts).unwrap();
            z.write_all(bytes).unwrap();
        }
    }
    z.finish().unwrap().into_inner()
}

/// An `.npz` seed as [the file, its `x.npy`, its `y.npy`]: edits to the
/// members reach the `.npy` parser, whose bytes a zip checksum guards.
fn npz_seed(file: Vec<u8>) -> Case {
    use std::io::Read;
    let mut members = vec![vec![]; 2];
    if let Ok(mut z) = zip::ZipArchive::new(std::io::Cursor::new(&file)) {
        for (i, name) in ["x.npy", "y.npy"].iter().enumerate() {
            if let Ok(mut f) = z.by_name(name) {
                f.read_to_end(&mut members[i]).unwrap();
            }
        }
    }
    vec![file, members.remove(0), members.remove(0)]
}

#[test]
fn npz() {
    // Both: the file as it is, and the (edited) members zipped again.
    fuzz_target!("npz", &[], |c: &Case| {
        let whole = data_set("f.npz", &c[0]);
        data_set("f.npz", &zip_members(&c[1], &c[2])) || whole
    });
}

/// `examples/tiny.pot` and the configuration of the seed run, for the checkpoint target.
fn tiny() -> &'static (Graph, TrainConfig) {
    static TINY: OnceLock<(Graph, TrainConfig)> = OnceLock::new();
    TINY.get_or_init(|| {
        let g = syntax::parse(EXAMPLES[3]).unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/checkpoint");
        let bytes = std::fs::read(dir.join("float.safetensors")).unwrap();
        let ck = Checkpoint::from_bytes(Path::new("float.safetensors"), &bytes).unwrap();
        let cfg: TrainConfig = ck.json(potc::ckpt::KEY_CONFIG).unwrap().unwrap();
        (g, cfg)
    })
}

/// A checkpoint as `train --init/--resume`, `eval` and `lower` use it.
fn checkpoint_case(bytes: &[u8]) -> bool {
    let path = Path::new("f.safetensors");
    let Ok(ck) = Checkpoint::from_bytes(path, bytes) else { return false };
    let (g, cfg) = tiny();
    let _ = labels(&ck);
    if ck.check_against(g).is_ok() {
        let plan = Plan::new(g).unwrap();
        let w = weights(&plan, &ck);
        assert_eq!(w.len(), plan.params.len());
        let _ = resume_weights(&plan, &ck);
        let _ = train_state(&plan, &ck, TrainState::new(&plan, cfg));
    }
    let float = ck.check_against(g).is_ok();
    match potc::driver::lower_model(g, &ck, path, 32, potc::eqsat::Target::Cpu, false) {
        Ok(lowered) => IntInterpreter::from_checked(&lowered.program).is_ok(),
        Err(_) => float,
    }
}

#[test]
fn checkpoint() {
    fuzz_target!("checkpoint", &[], |c: &Case| checkpoint_case(&c[0]));
}

/// A program directory as `potc run` and `potc bench` load it: model text
/// and weights checked, then the interpreter and the JIT on the same
/// inputs, which must agree.
fn program_case(c: &Case) -> bool {
    let Ok(text) = std::str::from_utf8(&c[0]) else { return false };
    let Ok(graph) = syntax::parse(text) else { return false };
    let wpath = Path::new("p/weights.safetensors");
    let Ok(ck) = Checkpoint::from_bytes(wpath, &c[1]) else { return false };
    let Ok(p) = IntProgram::from_checkpoint(wpath, ck, graph) else { return false };
    let elements: u64 = p.graph.node_ids().map(|id| p.graph.node(id).ty.elements()).sum();
    let interp = IntInterpreter::from_checked(&p);
    let jit = JitProgram::compile(&p, JitOptions::default());
    if elements > MAX_RUN_ELEMENTS {
        return false;
    }
    let x = p.random_input(2, c[1].len() as u64);
    let want = interp.map(|i| i.run(&x));
    match (&want, jit) {
        (Ok(want), Ok(jit)) => {
            assert_eq!(&jit.run(&x), want, "the JIT and the interpreter disagree");
            true
        }
        _ => false,
    }
}

#[test]
fn program() {
    fuzz_target!("program", &["model.pot", "weights.safetensors"], program_case);
}

/// An ONNX model as `potc import` reads it: an import that succeeds gives a
/// graph that verifies, plans, prints and parses back, with every parameter.
fn onnx_case(bytes: &[u8]) -> bool {
    let settings = potc::onnx::ImportSettings { name: "m".into(), length: None };
    let Ok(im) = potc::onnx::import(bytes, &settings) else { return false };
    potc::ir::verify(&im.graph).unwrap();
    let text = potc::ir::print(&im.graph);
    assert_eq!(potc::ir::print(&syntax::parse(&text).unwrap()), text);
    for (name, spec) in im.graph.params() {
        let found = im.params.iter().find(|(n, _, _)| *n == name);
        assert!(found.is_some_and(
            |(_, d, v)| *d == spec.shape && v.len() == spec.shape.iter().product::<usize>()
        ));
    }
    Plan::new(&im.graph).is_ok()
}

#[test]
fn onnx() {
    fuzz_target!("onnx", &[], |c: &Case| onnx_case(&c[0]));
}
