//! Data-set readers: `.ts` (sktime/aeon), `.tsv` (UCR 2018) and `.npz` (NumPy).
//!
//! [`load`] picks the reader by the file's extension and returns a [`Dataset`]
//! of equal-length series, stored sample-major: value `l` of channel `c` of
//! sample `n` is `x[(n * channels + c) * length + l]`.
//!
//! # Labels
//!
//! Labels are kept as text and map to class indices in the order the file
//! declares them (`@classLabel true a b c` in a `.ts` file: `a` is class 0),
//! else in sorted order. "Sorted" is numeric order when every label parses as
//! a number (integers exactly, otherwise as `f64`; ties, such as `1` and `1.0`,
//! fall back to the text), else lexicographic (byte) order. A `.tsv` file
//! declares nothing; an `.npz` file's labels are the distinct values of `y`
//! written as decimal text, so they always sort numerically.
//! [`Dataset::with_labels`] re-indexes a data set to another mapping, e.g. the
//! one stored in a checkpoint.
//!
//! # Errors
//!
//! Every rejection names the file and, for text files, the 1-based line
//! (`path:line: reason`); channel and value positions in messages are 1-based
//! too. For `.npz` files the message names the array (``path: array `x`:
//! reason``) and indexes it like NumPy, from 0. Missing values (`?`, `NaN`) and
//! infinities are rejected rather than imputed. No input panics.

mod npz;
mod ts;
mod tsv;

use std::collections::HashMap;
use std::path::Path;

/// A labelled data set of equal-length series, stored sample-major: x[(n * channels + c) * length + l].
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub x: Vec<f32>,
    /// Class index per sample, an index into `labels`.
    pub y: Vec<usize>,
    pub n: usize,
    pub channels: usize,
    pub length: usize,
    /// Class index -> label text.
    pub labels: Vec<String>,
    /// Per sample: the 1-based line (`.ts`/`.tsv`) or 0-based index (`.npz`) it came from, for messages.
    pub origin: Vec<usize>,
    pub path: String,
}

/// Why a data set could not be read. The `Display` form is the whole message.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read the file: {error}")]
    Io { path: String, error: std::io::Error },
    /// A problem at a known line of a text file.
    #[error("{path}:{line}: {reason}")]
    Line { path: String, line: usize, reason: String },
    /// A problem with the file as a whole (no line to point at).
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// A problem with one array of an `.npz` file.
    #[error("{path}: array `{array}`: {reason}")]
    Array { path: String, array: String, reason: String },
}

/// Reads a data set, choosing the reader by extension: `.ts`, `.tsv` or `.npz`.
pub fn load(path: &Path) -> Result<Dataset, DataError> {
    let shown = path.display().to_string();
    reader(&shown)?;
    let bytes =
        std::fs::read(path).map_err(|error| DataError::Io { path: shown.clone(), error })?;
    load_bytes(&shown, &bytes)
}

/// Parses a data set already in memory; `name` picks the format by its extension
/// (as in [`load`]) and is the path shown in messages.
pub fn load_bytes(name: &str, bytes: &[u8]) -> Result<Dataset, DataError> {
    reader(name)?(name, bytes)
}

type Reader = fn(&str, &[u8]) -> Result<Dataset, DataError>;

fn reader(name: &str) -> Result<Reader, DataError> {
    let ext = Path::new(name).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("ts") => Ok(ts::parse),
        Some("tsv") => Ok(tsv::parse),
        Some("npz") => Ok(npz::parse),
        _ => Err(DataError::File {
            path: name.to_string(),
            reason: "unknown data format: the file name must end in .ts (sktime/aeon), .tsv \
                     (UCR 2018) or .npz (NumPy arrays `x` and `y`)"
                .into(),
        }),
    }
}

impl Dataset {
    /// Re-indexes labels to a given mapping (e.g. the one stored in a checkpoint); a label not in it is an error naming file, line and label.
    pub fn with_labels(mut self, labels: &[String]) -> Result<Dataset, DataError> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, l) in labels.iter().enumerate() {
            index.entry(l.as_str()).or_insert(i);
        }
        let remap: Vec<Option<usize>> =
            self.labels.iter().map(|l| index.get(l.as_str()).copied()).collect();
        for (i, y) in self.y.iter_mut().enumerate() {
            match remap.get(*y).copied().flatten() {
                Some(to) => *y = to,
                None => {
                    let label = self.labels.get(*y).map_or("?", String::as_str);
                    let reason = format!(
                        "label `{}` is not in the model's label mapping ({})",
                        clip(label),
                        list(labels)
                    );
                    return Err(self.sample_error(i, reason));
                }
            }
        }
        self.labels = labels.to_vec();
        Ok(self)
    }

    /// Sample i's series, [channels * length].
    ///
    /// # Panics
    /// If `i >= self.n`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let size = self.channels * self.length;
        &self.x[i * size..(i + 1) * size]
    }

    /// A subset in the given order (used for seeded shuffling and for tiny slices in tests).
    ///
    /// # Panics
    /// If an index is `>= self.n`.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(indices.len() * self.channels * self.length);
        for &i in indices {
            x.extend_from_slice(self.sample(i));
        }
        Dataset {
            x,
            y: indices.iter().map(|&i| self.y[i]).collect(),
            n: indices.len(),
            channels: self.channels,
            length: self.length,
            labels: self.labels.clone(),
            origin: indices.iter().map(|&i| self.origin[i]).collect(),
            path: self.path.clone(),
        }
    }

    /// An error about sample `i`, located by its origin (a line, or an index into `y` for `.npz`).
    fn sample_error(&self, i: usize, reason: String) -> DataError {
        let origin = self.origin.get(i).copied().unwrap_or(i);
        if self.path.to_ascii_lowercase().ends_with(".npz") {
            let reason = format!("y[{origin}]: {reason}");
            DataError::Array { path: self.path.clone(), array: "y".into(), reason }
        } else {
            DataError::Line { path: self.path.clone(), line: origin, reason }
        }
    }
}

/// Copies the chosen samples into the channel-major batch layout `x[c][b][l]`.
pub fn batch(ds: &Dataset, idx: &[usize]) -> Vec<f32> {
    let (c, l, b) = (ds.channels, ds.length, idx.len());
    let mut x = vec![0.0f32; c * b * l];
    for (bi, &i) in idx.iter().enumerate() {
        let s = ds.sample(i);
        for ci in 0..c {
            x[(ci * b + bi) * l..][..l].copy_from_slice(&s[ci * l..][..l]);
        }
    }
    x
}

/// Labels as a short human list: `a, b, c` (at most 20 shown).
fn list(labels: &[String]) -> String {
    let mut out = labels.iter().take(20).map(|l| clip(l)).collect::<Vec<_>>().join(", ");
    if labels.len() > 20 {
        out.push_str(&format!(", ... ({} in all)", labels.len()));
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

/// The distinct labels in sorted order: numeric when all are numbers, else by text.
pub(crate) fn sorted_labels<'a>(raw: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut distinct: Vec<&str> = raw.into_iter().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let ints: Option<Vec<i128>> = distinct.iter().map(|s| s.parse().ok()).collect();
    let floats: Option<Vec<f64>> = distinct.iter().map(|s| s.parse().ok()).collect();
    let mut keyed: Vec<(usize, &str)> = distinct.iter().copied().enumerate().collect();
    if let Some(v) = ints {
        keyed.sort_by(|a, b| v[a.0].cmp(&v[b.0]).then(a.1.cmp(b.1)));
    } else if let Some(v) = floats {
        keyed.sort_by(|a, b| v[a.0].total_cmp(&v[b.0]).then(a.1.cmp(b.1)));
    }
    keyed.into_iter().map(|(_, s)| s.to_string()).collect()
}

/// Samples read by a text or array reader, labels still as text.
pub(crate) struct Raw<'a> {
    pub path: &'a str,
    pub x: Vec<f32>,
    pub labels: Vec<&'a str>,
    pub origin: Vec<usize>,
    pub channels: usize,
    pub length: usize,
}

impl Raw<'_> {
    /// Maps the labels to class indices: by `declared` order when given (a label
    /// outside it is an error at its sample), else in sorted order.
    /// `declared` carries the line of the declaration, for messages.
    pub(crate) fn finish(
        self,
        declared: Option<(Vec<String>, usize)>,
    ) -> Result<Dataset, DataError> {
        let declared_at = declared.as_ref().map_or(0, |d| d.1);
        let labels = match declared {
            Some((labels, _)) => labels,
            None => sorted_labels(self.labels.iter().copied()),
        };
        let index: HashMap<&str, usize> =
            labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
        let mut y = Vec::with_capacity(self.labels.len());
        for (i, l) in self.labels.iter().enumerate() {
            match index.get(l) {
                Some(&c) => y.push(c),
                None => {
                    return Err(DataError::Line {
                        path: self.path.to_string(),
                        line: self.origin[i],
                        reason: format!(
                        "unknown class label `{}`: `@classLabel` (line {declared_at}) declares {}",
                        clip(l),
                        list(&labels)
                    ),
                    })
                }
            }
        }
        Ok(Dataset {
            x: self.x,
            n: y.len(),
            y,
            channels: self.channels,
            length: self.length,
            labels,
            origin: self.origin,
            path: self.path.to_string(),
        })
    }
}

/// The file as UTF-8 text (a leading byte-order mark dropped); invalid bytes are reported at their line.
pub(crate) fn utf8<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str, DataError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix('\u{feff}').unwrap_or(text)),
        Err(e) => {
            let at = e.valid_up_to();
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
            let reason = "not UTF-8 text (is this really a text data file?)".to_string();
            Err(DataError::Line { path: path.to_string(), line, reason })
        }
    }
}

/// Line-located errors for a text file; an error on a last line that lacks its
/// newline says the file may have been cut short.
pub(crate) struct Lines<'a> {
    pub path: &'a str,
    unterminated_last: usize,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(path: &'a str, text: &str) -> Self {
        let unterminated_last =
            if text.ends_with('\n') { 0 } else { text.bytes().filter(|&b| b == b'\n').count() + 1 };
        Lines { path, unterminated_last }
    }

    pub(crate) fn err(&self, line: usize, reason: impl Into<String>) -> DataError {
        let mut reason = reason.into();
        if line == self.unterminated_last {
            reason.push_str(" (the last line has no newline: is the file truncated?)");
        }
        DataError::Line { path: self.path.to_string(), line, reason }
    }
}

/// One value of a text file; the error is the reason only (the caller says where).
pub(crate) fn number(token: &str) -> Result<f32, String> {
    let t = token.trim();
    match t.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ if t.is_empty() => Err("empty value".into()),
        _ if t == "?" => Err("missing value `?` (missing values are not supported)".into()),
        Ok(v) if v.is_nan() => {
            Err(format!("`{}` is not a number (missing values are not supported)", clip(t)))
        }
        Ok(_) if t.parse::<f64>().is_ok_and(f64::is_finite) => {
            Err(format!("`{}` is outside the f32 range", clip(t)))
        }
        Ok(_) => Err(format!("`{}` is infinite (only finite values are supported)", clip(t))),
        Err(_) => Err(format!("bad number `{}`", clip(t))),
    }
}

/// At most 40 characters of a token, for messages.
pub(crate) fn clip(t: &str) -> String {
    match t.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &t[..at]),
        None => t.to_string(),
    }
}
