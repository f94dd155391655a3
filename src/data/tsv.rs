//! The UCR 2018 `.tsv` layout: one univariate series a line, the class label
//! first, then the values, all separated by tabs. Blank lines are skipped and
//! trailing whitespace (including a Windows `\r`) is ignored. There is no
//! header and no label declaration, so labels map in sorted order.

use super::{number, utf8, DataError, Dataset, Lines, Raw};

pub(super) fn parse(path: &str, bytes: &[u8]) -> Result<Dataset, DataError> {
    let text = utf8(path, bytes)?;
    let at = Lines::new(path, text);
    if text.trim().is_empty() {
        let reason = "empty file: expected one `label<TAB>value<TAB>...` line per sample";
        return Err(DataError::File { path: path.to_string(), reason: reason.into() });
    }
    let mut raw =
        Raw { path, x: Vec::new(), labels: Vec::new(), origin: Vec::new(), channels: 1, length: 0 };
    let mut first = 0;
    for (i, line) in text.split('\n').enumerate() {
        let no = i + 1;
        let line = line.trim_end();
        if line.trim_start().is_empty() {
            continue;
        }
        let mut fields = line.split('\t');
        let label = fields.next().unwrap_or_default().trim();
        if label.is_empty() {
            return Err(at.err(no, "empty class label (the first tab-separated field)"));
        }
        let start = raw.x.len();
        for (p, token) in fields.enumerate() {
            let v = number(token).map_err(|r| at.err(no, format!("value {}: {r}", p + 1)))?;
            raw.x.push(v);
        }
        let len = raw.x.len() - start;
        if len == 0 {
            let reason = if line.contains(',') {
                "no tab-separated values: this line uses commas, a .tsv file separates by tabs"
            } else if line.contains(' ') {
                "no tab-separated values: this line uses spaces, a .tsv file separates by tabs"
            } else {
                "a class label but no values"
            };
            return Err(at.err(no, reason));
        }
        if first == 0 {
            (first, raw.length) = (no, len);
        } else if len != raw.length {
            let reason = format!(
                "{len} values, but the first sample (line {first}) has {} \
                 (ragged series are not supported)",
                raw.length
            );
            return Err(at.err(no, reason));
        }
        raw.labels.push(label);
        raw.origin.push(no);
    }
    if raw.labels.is_empty() {
        let reason = "no samples: the file has only blank lines".to_string();
        return Err(DataError::File { path: path.to_string(), reason });
    }
    raw.finish(None)
}
