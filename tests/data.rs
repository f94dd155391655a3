//! The data-set readers (`potc::data`): the real UCR/UEA files, label order,
//! every rejection with its message, `.tsv`/`.npz` round trips, and no panic
//! on random or mutated input.

mod common;

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use npyz::WriterBuilder;
use potc::data::{load, load_bytes, Dataset};
use proptest::prelude::*;

const GUNPOINT_TRAIN: &str = include_str!("../examples/data/GunPoint_TRAIN.ts");

/// A fresh scratch file holding `bytes`.
fn write(name: &str, bytes: &[u8]) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "potc-data-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Loads `text` saved as `name` and expects an error; returns it with the path replaced by `F`.
fn fails(name: &str, bytes: &[u8]) -> String {
    let path = write(name, bytes);
    let e = load(&path).expect_err("expected a rejection").to_string();
    let shown = path.display().to_string();
    assert!(e.starts_with(&shown), "message does not name the file: {e}");
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
    e.replacen(&shown, "F", 1)
}

fn loads(name: &str, bytes: &[u8]) -> Dataset {
    let path = write(name, bytes);
    let d = load(&path).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
    d
}

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The first data line of a `.ts` text, as values.
fn first_values(text: &str) -> Vec<f32> {
    let line = text.lines().skip_while(|l| !l.starts_with("@data")).nth(1).unwrap();
    let series = line.rsplit_once(':').unwrap().0;
    series.split([':', ',']).map(|v| v.parse().unwrap()).collect()
}

const HEAD: &str =
    "@problemName t\n@timeStamps false\n@univariate true\n@classLabel true a b\n@data\n";

// ---------------------------------------------------------------- real files

#[test]
fn gunpoint_train_and_test() {
    for (file, n) in [("GunPoint_TRAIN.ts", 50), ("GunPoint_TEST.ts", 150)] {
        let path = manifest(&format!("examples/data/{file}"));
        let d = load(&path).unwrap();
        assert_eq!((d.n, d.channels, d.length), (n, 1, 150), "{file}");
        assert_eq!(d.labels, ["1", "2"]);
        assert_eq!((d.x.len(), d.y.len(), d.origin.len()), (n * 150, n, n));
        assert_eq!(d.origin[0], 20, "the first sample is on line 20");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(d.sample(0), &first_values(&text)[..]);
        assert!(d.x.iter().all(|v| v.is_finite()));
    }
    let d = load(&manifest("examples/data/GunPoint_TRAIN.ts")).unwrap();
    assert_eq!(d.sample(0)[..3], [-0.6478854, -0.64199155, -0.63818632]);
    assert_eq!(d.y[0], 1, "sample 0 is labelled `2`");
}

#[test]
fn basicmotions_is_six_channels_in_declared_label_order() {
    let path = common::shared_data("BasicMotions/BasicMotions_TRAIN.ts");
    let d = load(&path).unwrap();
    assert_eq!((d.n, d.channels, d.length), (40, 6, 100));
    assert_eq!(d.labels, ["Standing", "Running", "Walking", "Badminton"]);
    assert_eq!(d.sample(0), &first_values(&std::fs::read_to_string(&path).unwrap())[..]);
    assert_eq!(d.y[0], 0, "sample 0 is `Standing`");
    // Every class appears; channel 2 of sample 0 starts at value 100.
    assert!((0..4).all(|c| d.y.contains(&c)));
    assert_eq!(d.sample(0)[100], d.x[100]);
}

#[test]
fn italy_power_demand_reads_exponents() {
    let path = common::shared_data("ItalyPowerDemand/ItalyPowerDemand_TEST.ts");
    let d = load(&path).unwrap();
    assert_eq!((d.n, d.channels, d.length), (1029, 1, 24));
    assert!(d.x.iter().any(|v| v.abs() > 0.0 && v.abs() < 1e-6), "E-9 style values");
}

// ---------------------------------------------------------------- .ts details

#[test]
fn ts_tolerates_crlf_spaces_comments_and_case() {
    let text =
        "# a comment: with a colon\r\n@PROBLEMNAME x\r\n@univariate FALSE\r\n@Dimensions 2\r\n\
                @seriesLength 3\r\n@classLabel false\r\n@DATA\r\n\
                1, -2.5e-1 ,+3E2: .5,4.,-0 : 10\r\n# between samples\r\n\r\n\
                7,8,9:1,2,3:9 \r\n";
    let d = loads("crlf.ts", text.as_bytes());
    assert_eq!((d.n, d.channels, d.length), (2, 2, 3));
    assert_eq!(d.sample(0), [1.0, -0.25, 300.0, 0.5, 4.0, -0.0]);
    assert_eq!(d.labels, ["9", "10"], "numeric, not text, order");
    assert_eq!(d.y, [1, 0]);
    assert_eq!(d.origin, [8, 11]);
}

#[test]
fn labels_sort_numerically_only_when_all_are_numbers() {
    let d = loads("n.tsv", b"10\t1\n-1\t2\n9\t3\n2.5\t4\n");
    assert_eq!(d.labels, ["-1", "2.5", "9", "10"]);
    assert_eq!(d.y, [3, 0, 2, 1]);
    let d = loads("t.tsv", b"b\t1\n10\t2\na\t3\n9\t4\n");
    assert_eq!(d.labels, ["10", "9", "a", "b"]);
    let d = loads("d.ts", format!("{HEAD}1,2:b\n3,4:a\n").as_bytes());
    assert_eq!(d.labels, ["a", "b"], "declared order");
    assert_eq!(d.y, [1, 0]);
    let d = loads("d.ts", b"@classLabel true z y x\n@data\n1:x\n2:z\n");
    assert_eq!(d.labels, ["z", "y", "x"], "declared, even when not sorted or all used");
    assert_eq!(d.y, [2, 0]);
}

#[test]
fn with_labels_reindexes_and_names_an_unknown_label() {
    let d = load(&manifest("examples/data/GunPoint_TRAIN.ts")).unwrap();
    let swapped = d.clone().with_labels(&["2".into(), "1".into(), "3".into()]).unwrap();
    assert_eq!(swapped.labels, ["2", "1", "3"]);
    assert!(d.y.iter().zip(&swapped.y).all(|(a, b)| a + b == 1));
    let e = d.with_labels(&["1".into()]).unwrap_err().to_string();
    assert!(
        e.ends_with("GunPoint_TRAIN.ts:20: label `2` is not in the model's label mapping (1)"),
        "{e}"
    );

    let npz = loads(
        "l.npz",
        &npz(&[("x.npy", npy(&[2, 1], &[1f32, 2.0])), ("y.npy", npy(&[2], &[4i64, 7]))]),
    );
    let e = npz.with_labels(&["4".into()]).unwrap_err().to_string();
    assert!(
        e.ends_with(".npz: array `y`: y[1]: label `7` is not in the model's label mapping (4)"),
        "{e}"
    );
}

#[test]
fn select_and_sample() {
    let d = loads("s.ts", format!("{HEAD}1,2:a\n3,4:b\n5,6:a\n").as_bytes());
    assert_eq!(d.sample(1), [3.0, 4.0]);
    let s = d.select(&[2, 0, 2]);
    assert_eq!(
        (s.n, s.x.as_slice(), s.y.as_slice()),
        (3, &[5.0, 6.0, 1.0, 2.0, 5.0, 6.0][..], &[0, 0, 0][..])
    );
    assert_eq!(s.origin, [8, 6, 8]);
    assert_eq!((s.labels, s.path), (d.labels.clone(), d.path.clone()));
    assert_eq!(d.select(&[]).n, 0);
}

// ---------------------------------------------------------------- .ts errors

#[test]
fn ts_errors_name_file_line_and_reason() {
    let cases: &[(&str, &str)] = &[
        ("1,2,3:a\n1,2:b\n", "F:7: channel 1 has 2 values, but the first sample (line 6) has 3 (ragged series are not supported)"),
        ("1,2:3,4:a\n", "F:6: 2 channel(s), but `@dimensions 1` (line 1) declares 1"),
        ("1,2:a\n1,NaN:a\n", "F:7: channel 1, value 2: `NaN` is not a number (missing values are not supported)"),
        ("1,2:a\n1,?:a\n", "F:7: channel 1, value 2: missing value `?` (missing values are not supported)"),
        ("1,2:a\n-inf,2:a\n", "F:7: channel 1, value 1: `-inf` is infinite (only finite values are supported)"),
        ("1,2:a\n1,1e39:a\n", "F:7: channel 1, value 2: `1e39` is outside the f32 range"),
        ("1,1.2.3:a\n", "F:6: channel 1, value 2: bad number `1.2.3`"),
        ("1,,2:a\n", "F:6: channel 1, value 2: empty value"),
        ("1,2:c\n", "F:6: unknown class label `c`: `@classLabel` (line 4) declares a, b"),
        ("1,2:a\n1,2:\n", "F:7: empty class label after the last `:`"),
        ("1,2:a\n1,2\n", "F:7: no class label: a sample is `values:label`, channels separated by `:`"),
        ("1,2:a\n@data\n", "F:7: a header line after `@data`"),
        ("", "F:5: no samples after `@data`"),
        ("\n# only a comment\n", "F:5: no samples after `@data`"),
    ];
    let head = "@dimensions 1\n@timeStamps false\n@missing false\n@classLabel true a b\n@data\n";
    for (body, want) in cases {
        assert_eq!(&fails("e.ts", format!("{head}{body}").as_bytes()), want, "{body:?}");
    }
}

#[test]
fn ts_ragged_channels_and_headers() {
    let multi = "@dimensions 2\n@seriesLength 2\n@data\n";
    let cases: &[(&str, &str)] = &[
        (
            "1,2:3:a\n",
            "F:4: channel 2 has 1 values but channel 1 has 2 (ragged series are not supported)",
        ),
        ("1,2:3,4:a\n1,2:b\n", "F:5: 1 channel(s), but the first sample (line 4) has 2"),
        ("1,2,3:3,4,5:a\n", "F:4: 3 values per channel, but `@seriesLength 2` (line 2) declares 2"),
    ];
    for (body, want) in cases {
        assert_eq!(&fails("e.ts", format!("{multi}{body}").as_bytes()), want, "{body:?}");
    }
    let e = fails("u.ts", b"@univariate true\n@data\n1:2:a\n");
    assert_eq!(e, "F:3: 2 channels, but `@univariate true` (line 1) declares one");
    let e = fails("h.ts", b"@timeStamps true\n@data\n(0,1):a\n");
    assert_eq!(e, "F:1: timestamped series (`@timeStamps true`) are not supported; potc reads equally spaced values");
    let e = fails("h.ts", b"@targetLabel true\n@data\n1:2.5\n");
    assert_eq!(
        e,
        "F:1: regression targets (`@targetLabel true`) are not supported; potc trains classifiers"
    );
    let e = fails("h.ts", b"@classlabels true a\n@data\n");
    assert!(
        e.starts_with("F:1: unknown header keyword `@classlabels`; expected one of @problemName,"),
        "{e}"
    );
    assert_eq!(
        fails("h.ts", b"@missing maybe\n"),
        "F:1: `@missing` takes `true` or `false`, not `maybe`"
    );
    assert_eq!(
        fails("h.ts", b"@dimensions 0\n"),
        "F:1: `@dimensions` takes a positive integer, not `0`"
    );
    assert_eq!(
        fails("h.ts", b"@classLabel true\n"),
        "F:1: `@classLabel true` must list the class labels"
    );
    assert_eq!(
        fails("h.ts", b"@classLabel true a b a\n"),
        "F:1: label `a` is listed twice in `@classLabel`"
    );
    assert_eq!(
        fails("h.ts", b"# hi\n1,2:a\n"),
        "F:2: a sample before the `@data` line (header lines start with `@`)"
    );
    assert_eq!(fails("h.ts", b"@data x\n"), "F:1: unexpected text after `@data`");
}

#[test]
fn ts_empty_truncated_and_binary_files() {
    assert_eq!(fails("e.ts", b""), "F: empty file: expected a .ts header and `@data`");
    assert_eq!(fails("e.ts", b" \r\n\n"), "F: empty file: expected a .ts header and `@data`");
    let header_only = &GUNPOINT_TRAIN[..GUNPOINT_TRAIN.find("@data").unwrap()];
    assert_eq!(
        fails("t.ts", header_only.as_bytes()),
        "F: no `@data` line: the header never ends (is the file truncated?)"
    );
    // The last line cut mid-series: too short, and (for a univariate file) no label.
    let cut = &GUNPOINT_TRAIN[..GUNPOINT_TRAIN.len() - 40];
    assert_eq!(
        fails("t.ts", cut.as_bytes()),
        "F:69: no class label: a sample is `values:label`, channels separated by `:` \
         (the last line has no newline: is the file truncated?)"
    );
    let cut = b"@dimensions 2\n@data\n1,2:3,4:a\n1,2:3";
    assert_eq!(
        fails("t.ts", cut),
        "F:4: 1 channel(s), but the first sample (line 3) has 2 (the last line has no newline: is the file truncated?)"
    );
    assert_eq!(
        fails("b.ts", b"@data\n1:a\n\xff\xfe\n"),
        "F:3: not UTF-8 text (is this really a text data file?)"
    );
}

// ---------------------------------------------------------------- .tsv

#[test]
fn tsv_round_trip_of_gunpoint() {
    let d = load(&manifest("examples/data/GunPoint_TRAIN.ts")).unwrap();
    let mut text = String::new();
    for i in 0..d.n {
        text.push_str(&d.labels[d.y[i]]);
        for v in d.sample(i) {
            text.push_str(&format!("\t{v}"));
        }
        text.push_str(if i % 2 == 0 { "\n" } else { " \r\n" });
    }
    let back = loads("GunPoint_TRAIN.tsv", text.as_bytes());
    assert_eq!((back.x, back.y, back.labels), (d.x, d.y, d.labels));
    assert_eq!((back.n, back.channels, back.length), (50, 1, 150));
    assert_eq!(back.origin[..3], [1, 2, 3]);
}

#[test]
fn tsv_errors_name_file_line_and_reason() {
    let cases: &[(&[u8], &str)] = &[
        (b"1\t1\t2\n2\t1\n", "F:2: 1 values, but the first sample (line 1) has 2 (ragged series are not supported)"),
        (b"1\t1\t2\n2\t1\tNaN\n", "F:2: value 2: `NaN` is not a number (missing values are not supported)"),
        (b"1\t1\t?\n", "F:1: value 2: missing value `?` (missing values are not supported)"),
        (b"1\t1\tinf\n", "F:1: value 2: `inf` is infinite (only finite values are supported)"),
        (b"1\t1.2.3\t2\n", "F:1: value 1: bad number `1.2.3`"),
        (b"1\t1\t\t2\n", "F:1: value 2: empty value"),
        (b"1,1.0,2.0\n", "F:1: no tab-separated values: this line uses commas, a .tsv file separates by tabs"),
        (b"1 1.0 2.0\n", "F:1: no tab-separated values: this line uses spaces, a .tsv file separates by tabs"),
        (b"\t1\t2\n", "F:1: empty class label (the first tab-separated field)"),
        (b"1\t1\t2\n2", "F:2: a class label but no values (the last line has no newline: is the file truncated?)"),
        (
            b"1\t1\t2\n2\t3",
            "F:2: 1 values, but the first sample (line 1) has 2 (ragged series are not supported) \
             (the last line has no newline: is the file truncated?)",
        ),
        (b"", "F: empty file: expected one `label<TAB>value<TAB>...` line per sample"),
        (b"\n \r\n", "F: empty file: expected one `label<TAB>value<TAB>...` line per sample"),
    ];
    for (bytes, want) in cases {
        assert_eq!(&fails("e.tsv", bytes), want, "{:?}", String::from_utf8_lossy(bytes));
    }
}

// ---------------------------------------------------------------- .npz

/// A `.npy` member written by npyz.
fn npy<T: npyz::AutoSerialize + Copy>(shape: &[u64], data: &[T]) -> Vec<u8> {
    npy_with(npyz::WriteOptions::<T>::new().default_dtype(), shape, data, npyz::Order::C)
}

fn npy_with<T: npyz::AutoSerialize + Copy>(
    opts: npyz::write_options::WithDType<npyz::WriteOptions<T>>,
    shape: &[u64],
    data: &[T],
    order: npyz::Order,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = opts.shape(shape).order(order).writer(&mut out).begin_nd().unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
    out
}

/// A zip of the given members; deflated like `np.savez_compressed` when `deflate`.
fn npz_with(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let method =
        if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in members {
        z.start_file(*name, opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap().into_inner()
}

fn npz(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    npz_with(members, false)
}

#[test]
fn npz_round_trip_float32_and_float64() {
    let d = load(&manifest("examples/data/GunPoint_TRAIN.ts")).unwrap();
    let y: Vec<i64> = d.y.iter().map(|&c| d.labels[c].parse().unwrap()).collect();
    for deflate in [false, true] {
        let file =
            npz_with(&[("x.npy", npy(&[50, 1, 150], &d.x)), ("y.npy", npy(&[50], &y))], deflate);
        let back = loads("gp.npz", &file);
        assert_eq!((&back.x, &back.y, &back.labels), (&d.x, &d.y, &d.labels));
        assert_eq!((back.n, back.channels, back.length), (50, 1, 150));
        assert_eq!(back.origin[..3], [0, 1, 2]);
    }
    // [N, L] float64 with int32 labels; big-endian float32; Fortran order; unsigned bytes.
    let x64: Vec<f64> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let back =
        loads("b.npz", &npz(&[("x.npy", npy(&[2, 3], &x64)), ("y.npy", npy(&[2], &[-3i32, 12]))]));
    assert_eq!(
        (back.n, back.channels, back.length, back.x.as_slice()),
        (2, 1, 3, &[1f32, 2., 3., 4., 5., 6.][..])
    );
    assert_eq!((back.labels, back.y), (vec!["-3".to_string(), "12".into()], vec![0, 1]));
    let be = npyz::WriteOptions::<f32>::new().dtype(npyz::DType::Plain(">f4".parse().unwrap()));
    let x = npy_with(be, &[1, 2, 2], &[1f32, 2., 3., 4.], npyz::Order::C);
    let back = loads("b.npz", &npz(&[("x.npy", x), ("y.npy", npy(&[1], &[200u8]))]));
    assert_eq!(
        (back.channels, back.x.as_slice(), back.labels[0].as_str()),
        (2, &[1f32, 2., 3., 4.][..], "200")
    );
    // Fortran order: file order is x[0,0,0], x[1,0,0], x[0,1,0], ...
    let f = npyz::WriteOptions::<f32>::new().default_dtype();
    let x = npy_with(
        f,
        &[2, 2, 3],
        &[0f32, 100., 10., 110., 1., 101., 11., 111., 2., 102., 12., 112.],
        npyz::Order::Fortran,
    );
    let back = loads("f.npz", &npz(&[("x.npy", x), ("y.npy", npy(&[2], &[0u64, 1]))]));
    assert_eq!(back.x, [0., 1., 2., 10., 11., 12., 100., 101., 102., 110., 111., 112.]);
}

#[test]
fn npz_errors_name_the_array() {
    let x = || npy(&[2, 1, 2], &[1f32, 2., 3., 4.]);
    let y = || npy(&[2], &[0i64, 1]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "F: empty file: expected an .npz archive with arrays `x` and `y`"),
        (npz(&[("y.npy", y())]), "F: array `x`: missing (the archive holds: y; save with `np.savez(path, x=x, y=y)`)"),
        (npz(&[("x.npy", x()), ("z.npy", y())]), "F: array `y`: missing (the archive holds: x, z; save with `np.savez(path, x=x, y=y)`)"),
        (npz(&[("x.npy", npy(&[4], &[1f32, 2., 3., 4.])), ("y.npy", y())]), "F: array `x`: shape [4] is not [N, C, L] or [N, L]"),
        (npz(&[("x.npy", npy(&[2, 1, 2], &[1i32, 2, 3, 4])), ("y.npy", y())]), "F: array `x`: dtype `<i4` is not float32 or float64"),
        (npz(&[("x.npy", x()), ("y.npy", npy(&[2], &[0f32, 1.]))]), "F: array `y`: dtype `<f4` is not an integer type"),
        (npz(&[("x.npy", x()), ("y.npy", npy(&[2, 1], &[0i64, 1]))]), "F: array `y`: shape [2, 1] is not [N]"),
        (npz(&[("x.npy", x()), ("y.npy", npy(&[3], &[0i64, 1, 1]))]), "F: array `y`: 3 labels, but array `x` has 2 samples"),
        (npz(&[("x.npy", npy(&[0, 1, 2], &[] as &[f32])), ("y.npy", npy(&[0], &[] as &[i64]))]), "F: array `x`: no samples (shape [0, 1, 2])"),
        (npz(&[("x.npy", npy(&[2, 0, 2], &[] as &[f32])), ("y.npy", y())]), "F: array `x`: shape [2, 0, 2] has an empty dimension"),
        (
            npz(&[("x.npy", npy(&[2, 1, 2], &[1f32, 2., f32::NAN, 4.])), ("y.npy", y())]),
            "F: array `x`: x[1, 0, 0] is NaN (missing values and infinities are not supported)",
        ),
        (
            npz(&[("x.npy", npy(&[2, 2], &[1f64, 2., 3., 1e300])), ("y.npy", y())]),
            "F: array `x`: x[1, 1] = 1e300 is outside the float32 range",
        ),
        (
            npz(&[("x.npy", x()[..x().len() - 3].to_vec()), ("y.npy", y())]),
            "F: array `x`: shape [2, 1, 2] of `<f4` needs 16 data bytes, but the array has 13 (is the file truncated?)",
        ),
        (npz(&[("x.npy", b"\x93NUMPY\x01\x00\x30\x00{'descr': '<f4'".to_vec()), ("y.npy", y())]), "F: array `x`: the .npy header is truncated"),
        (npz(&[("x.npy", b"PK not an npy".to_vec()), ("y.npy", y())]), "F: array `x`: not a .npy array (bad magic bytes)"),
    ];
    for (bytes, want) in cases {
        assert_eq!(fails("e.npz", &bytes), want);
    }
    let e = fails("e.npz", b"this is not a zip archive");
    assert!(e.starts_with("F: not an .npz file (a zip archive of .npy arrays): "), "{e}");
    let whole = npz(&[("x.npy", x()), ("y.npy", y())]);
    let e = fails("e.npz", &whole[..whole.len() / 2]);
    assert!(e.starts_with("F: not an .npz file"), "{e}");
    let header = |h: &str| {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        npz(&[("x.npy", b), ("y.npy", y())])
    };
    let e = fails("e.npz", &header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }"));
    assert_eq!(e, "F: array `x`: the shape is too large");
    let e = fails(
        "e.npz",
        &header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"),
    );
    assert_eq!(e, "F: array `x`: structured dtypes are not supported");
    let e = fails("e.npz", &header("{'descr': '<f4', 'shape': (1,), }"));
    assert_eq!(e, "F: array `x`: the .npy header has no `fortran_order`");
}

#[test]
fn other_extensions_and_missing_files() {
    let e = fails("d.csv", b"1,2,3\n");
    assert_eq!(e, "F: unknown data format: the file name must end in .ts (sktime/aeon), .tsv (UCR 2018) or .npz (NumPy arrays `x` and `y`)");
    let missing = std::env::temp_dir().join("potc-data-no-such-dir/none.ts");
    let e = load(&missing).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: cannot read the file: ", missing.display())), "{e}");
    assert!(load_bytes("mem.TS", b"@data\n1:a\n").is_ok(), "extensions are case-insensitive");
}

// ---------------------------------------------------------------- no panics

/// Checks the invariants of any accepted data set; a rejection must name the file.
fn check(name: &str, bytes: &[u8]) {
    match load_bytes(name, bytes) {
        Ok(d) => {
            assert!(d.n > 0 && d.channels > 0 && d.length > 0);
            assert_eq!(d.x.len(), d.n * d.channels * d.length);
            assert_eq!((d.y.len(), d.origin.len()), (d.n, d.n));
            assert!(d.y.iter().all(|&c| c < d.labels.len()));
            assert!(d.x.iter().all(|v| v.is_finite()));
        }
        Err(e) => assert!(e.to_string().starts_with(name), "{e}"),
    }
}

const FRAGMENTS: [&str; 16] = [
    ":",
    ",",
    "\t",
    "\n",
    "\r\n",
    "?",
    "NaN",
    "inf",
    "1e99",
    "-",
    ".",
    "@data\n",
    "#",
    "@classLabel true 1 2\n",
    " ",
    "\u{feff}",
];

/// GunPoint's header and its first three samples.
fn gunpoint_small() -> String {
    GUNPOINT_TRAIN.lines().take(22).collect::<Vec<_>>().join("\n") + "\n"
}

fn mutate(text: &str, edits: &[(usize, usize, usize)]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for &(pos, kind, frag) in edits {
        let at = pos % (b.len() + 1);
        match kind % 3 {
            0 => b.truncate(at),
            1 => drop(b.splice(at..at, FRAGMENTS[frag % FRAGMENTS.len()].bytes())),
            _ => {
                if at < b.len() {
                    b.remove(at);
                }
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check("r.ts", &bytes);
        check("r.tsv", &bytes);
        check("r.npz", &bytes);
        let mut with_header = b"@data\n".to_vec();
        with_header.extend_from_slice(&bytes);
        check("r.ts", &with_header);
    }

    #[test]
    fn mutated_gunpoint_never_panics(edits in proptest::collection::vec((any::<usize>(), 0usize..3, any::<usize>()), 1..6)) {
        let ts = gunpoint_small();
        check("m.ts", &mutate(&ts, &edits));
        let tsv: String = ts.lines().skip(19).map(|l| {
            let (series, label) = l.rsplit_once(':').unwrap();
            format!("{label}\t{}\n", series.replace(',', "\t"))
        }).collect();
        check("m.tsv", &mutate(&tsv, &edits));
    }

    #[test]
    fn mutated_npy_members_never_panic(edits in proptest::collection::vec((0usize..200, any::<u8>()), 1..6), cut in 0usize..200) {
        let mut x = npy(&[2, 1, 3], &[1f32, 2., 3., 4., 5., 6.]);
        for (pos, byte) in edits {
            let at = pos % x.len();
            x[at] = byte;
        }
        check("m.npz", &npz(&[("x.npy", x.clone()), ("y.npy", npy(&[2], &[0i64, 1]))]));
        x.truncate(cut.min(x.len()));
        check("m.npz", &npz(&[("x.npy", x), ("y.npy", npy(&[2], &[0i64, 1]))]));
    }
}
