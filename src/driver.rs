//! What the CLI's commands do, as library functions that return text or a
//! rendered diagnostic, so tests can call them without a process.

use crate::diag::Diagnostic;
use crate::ir::{print, Graph};
use crate::pass::PassManager;
use crate::passes::registry;
use crate::syntax;

/// A user-facing failure, already rendered (`file:line:col: error: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// Source text with the path it was read from.
pub struct Source {
    pub path: String,
    pub text: String,
}

impl Source {
    pub fn fail(&self, d: &Diagnostic) -> Failure {
        Failure(d.render(&self.path, &self.text))
    }
}

/// Reads a model file; bytes that are not UTF-8 are reported at their line and column.
pub fn read_source(path: &str) -> Result<Source, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure(format!("{path}: error: cannot read the file: {e}\n")))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source { path: path.to_string(), text }),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let src = Source { path: path.to_string(), text };
            Err(src.fail(&Diagnostic::at(at..at + 1, "the file is not UTF-8 text")))
        }
    }
}

/// Reads, parses and verifies a model.
pub fn load_model(path: &str) -> Result<(Source, Graph), Failure> {
    let src = read_source(path)?;
    let graph = syntax::parse(&src.text).map_err(|d| src.fail(&d))?;
    Ok((src, graph))
}

/// `potc check`: a one-line summary of a valid model.
pub fn check(path: &str) -> Result<String, Failure> {
    let (_, g) = load_model(path)?;
    let count = |trainable: bool| -> usize {
        let params = g.params().into_iter().filter(|(_, p)| p.trainable == trainable);
        params.map(|(_, p)| p.shape.iter().product::<usize>()).sum()
    };
    let out = g.output().map(|o| g.node(o).ty.to_string()).unwrap_or_default();
    Ok(format!(
        "{path}: ok: model `{}`, {} ops, {} trainable parameters, {} statistics, returns {out}\n",
        g.name,
        g.len() - g.inputs().len(),
        count(true),
        count(false),
    ))
}

/// `potc print`: the IR after the named passes; with `print_after_all`, the
/// parsed IR and the IR after every pass, each under a header.
pub fn print_model(path: &str, passes: &str, print_after_all: bool) -> Result<String, Failure> {
    let (src, mut g) = load_model(path)?;
    let registry = registry();
    let pipeline = registry.pipeline(passes).map_err(|e| Failure(format!("error: {e}\n")))?;
    let mut out = String::new();
    if print_after_all {
        out.push_str("// *** IR after parse ***\n");
        out.push_str(&print(&g));
    }
    let manager = PassManager { allow_meaning_changes: true };
    manager
        .run(&pipeline, &mut g, |r| {
            if print_after_all {
                let note = if r.changed { "" } else { " (no change)" };
                out.push_str(&format!("\n// *** IR after {}{note} ***\n", r.pass.name()));
                out.push_str(&print(r.graph));
            }
        })
        .map_err(|e| Failure(format!("{}: error: {e}\n", src.path)))?;
    if !print_after_all {
        out.push_str(&print(&g));
    }
    Ok(out)
}

/// `potc passes`: every pass with its summary, or one pass in full.
pub fn describe_passes(name: Option<&str>) -> Result<String, Failure> {
    let registry = registry();
    match name {
        None => Ok(registry
            .iter()
            .map(|p| format!("{:<16} {} ({})\n", p.name(), p.summary(), p.semantics()))
            .collect()),
        Some(n) => {
            let pipeline = registry.pipeline(n).map_err(|e| Failure(format!("error: {e}\n")))?;
            Ok(pipeline
                .passes
                .iter()
                .map(|p| {
                    format!(
                        "{}: {} ({})\n\n{}\n",
                        p.name(),
                        p.summary(),
                        p.semantics(),
                        p.description()
                    )
                })
                .collect())
        }
    }
}
