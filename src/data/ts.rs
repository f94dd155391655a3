//! The sktime/aeon `.ts` format of the UCR/UEA archives.
//!
//! A header of `@keyword value` lines (keywords case-insensitive; `#` lines are
//! comments), then `@data` and one sample a line: channels separated by `:`,
//! values within a channel by `,`, the class label after the last `:`.
//! `@dimensions`, `@univariate` and `@seriesLength` (unless `@equalLength
//! false`) are checked against the data; `@classLabel true a b c` fixes the
//! label order and rejects other labels. Timestamped series (`@timeStamps
//! true`) and regression targets (`@targetLabel true`) are rejected.

use super::{number, utf8, DataError, Dataset, Lines, Raw};

/// What the header declared, with the line of each declaration.
#[derive(Default)]
struct Header {
    univariate: Option<(bool, usize)>,
    dimensions: Option<(usize, usize)>,
    equal_length: Option<bool>,
    series_length: Option<(usize, usize)>,
    class_labels: Option<(Vec<String>, usize)>,
}

const KEYWORDS: &str = "@problemName, @timeStamps, @missing, @univariate, @dimensions, \
                        @equalLength, @seriesLength, @classLabel, @targetLabel, @data";

pub(super) fn parse(path: &str, bytes: &[u8]) -> Result<Dataset, DataError> {
    let text = utf8(path, bytes)?;
    let at = Lines::new(path, text);
    if text.trim().is_empty() {
        let reason = "empty file: expected a .ts header and `@data`".to_string();
        return Err(DataError::File { path: path.to_string(), reason });
    }
    let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l.trim()));
    let mut header = Header::default();
    let mut data_line = None;
    for (no, line) in lines.by_ref() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with('@') {
            let reason = "a sample before the `@data` line (header lines start with `@`)";
            return Err(at.err(no, reason));
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if keyword.eq_ignore_ascii_case("@data") {
            if !rest.trim().is_empty() {
                return Err(at.err(no, "unexpected text after `@data`"));
            }
            data_line = Some(no);
            break;
        }
        header_line(&mut header, keyword, rest.trim(), no).map_err(|r| at.err(no, r))?;
    }
    let Some(data_line) = data_line else {
        let reason = "no `@data` line: the header never ends (is the file truncated?)".to_string();
        return Err(DataError::File { path: path.to_string(), reason });
    };

    let mut raw =
        Raw { path, x: Vec::new(), labels: Vec::new(), origin: Vec::new(), channels: 0, length: 0 };
    let mut first = 0;
    for (no, line) in lines {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('@') {
            return Err(at.err(no, "a header line after `@data`"));
        }
        let Some((series, label)) = line.rsplit_once(':') else {
            let reason = "no class label: a sample is `values:label`, channels separated by `:`";
            return Err(at.err(no, reason));
        };
        let label = label.trim();
        if label.is_empty() {
            return Err(at.err(no, "empty class label after the last `:`"));
        }
        let mut channels = 0;
        let mut length = raw.length;
        for (c, channel) in series.split(':').enumerate() {
            let start = raw.x.len();
            for (p, token) in channel.split(',').enumerate() {
                let v = number(token)
                    .map_err(|r| at.err(no, format!("channel {}, value {}: {r}", c + 1, p + 1)))?;
                raw.x.push(v);
            }
            let len = raw.x.len() - start;
            if first == 0 && c == 0 {
                length = len;
            } else if len != length {
                let reason = if first == 0 {
                    format!("channel {} has {len} values but channel 1 has {length} (ragged series are not supported)", c + 1)
                } else {
                    format!("channel {} has {len} values, but the first sample (line {first}) has {length} (ragged series are not supported)", c + 1)
                };
                return Err(at.err(no, reason));
            }
            channels += 1;
        }
        if first == 0 {
            check_declared(&header, channels, length).map_err(|r| at.err(no, r))?;
            (first, raw.channels, raw.length) = (no, channels, length);
        } else if channels != raw.channels {
            let reason = format!(
                "{channels} channel(s), but the first sample (line {first}) has {}",
                raw.channels
            );
            return Err(at.err(no, reason));
        }
        raw.labels.push(label);
        raw.origin.push(no);
    }
    if raw.labels.is_empty() {
        return Err(at.err(data_line, "no samples after `@data`"));
    }
    raw.finish(header.class_labels)
}

/// Records one header line, or says what is wrong with it.
fn header_line(h: &mut Header, keyword: &str, rest: &str, no: usize) -> Result<(), String> {
    let flag = |v: &str| match v {
        _ if v.eq_ignore_ascii_case("true") => Ok(true),
        _ if v.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(format!("`{keyword}` takes `true` or `false`, not `{}`", super::clip(v))),
    };
    let count = |v: &str| match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{keyword}` takes a positive integer, not `{}`", super::clip(v))),
    };
    match keyword.to_ascii_lowercase().as_str() {
        "@problemname" => {}
        "@timestamps" => {
            if flag(rest)? {
                return Err("timestamped series (`@timeStamps true`) are not supported; \
                            potc reads equally spaced values"
                    .into());
            }
        }
        // `?` is rejected where it appears, whatever the header says.
        "@missing" => drop(flag(rest)?),
        "@univariate" => h.univariate = Some((flag(rest)?, no)),
        "@dimensions" => h.dimensions = Some((count(rest)?, no)),
        "@equallength" => h.equal_length = Some(flag(rest)?),
        "@serieslength" => h.series_length = Some((count(rest)?, no)),
        "@classlabel" => {
            let mut words = rest.split_whitespace();
            if flag(words.next().unwrap_or(""))? {
                let labels: Vec<String> = words.map(str::to_string).collect();
                if labels.is_empty() {
                    return Err("`@classLabel true` must list the class labels".into());
                }
                let mut seen = std::collections::HashSet::new();
                if let Some(l) = labels.iter().find(|l| !seen.insert(l.as_str())) {
                    let l = super::clip(l);
                    return Err(format!("label `{l}` is listed twice in `@classLabel`"));
                }
                h.class_labels = Some((labels, no));
            }
        }
        "@targetlabel" => {
            if flag(rest)? {
                return Err("regression targets (`@targetLabel true`) are not supported; \
                            potc trains classifiers"
                    .into());
            }
        }
        _ => {
            let k = super::clip(keyword);
            return Err(format!("unknown header keyword `{k}`; expected one of {KEYWORDS}"));
        }
    }
    Ok(())
}

/// The first sample's shape against `@dimensions`, `@univariate` and `@seriesLength`.
fn check_declared(h: &Header, channels: usize, length: usize) -> Result<(), String> {
    if let Some((d, at)) = h.dimensions {
        if d != channels {
            return Err(format!(
                "{channels} channel(s), but `@dimensions {d}` (line {at}) declares {d}"
            ));
        }
    }
    if let Some((true, at)) = h.univariate {
        if channels != 1 {
            return Err(format!(
                "{channels} channels, but `@univariate true` (line {at}) declares one"
            ));
        }
    }
    if let (Some((l, at)), false) = (h.series_length, h.equal_length == Some(false)) {
        if l != length {
            return Err(format!(
                "{length} values per channel, but `@seriesLength {l}` (line {at}) declares {l}"
            ));
        }
    }
    Ok(())
}
