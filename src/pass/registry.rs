//! Named passes and pipelines written as text.

use super::{Pass, PassError};

/// Every pass a pipeline may name.
pub struct Registry {
    passes: Vec<Box<dyn Pass>>,
}

/// A sequence of passes from one registry, in order.
pub struct Pipeline<'r> {
    pub passes: Vec<&'r dyn Pass>,
}

impl Registry {
    pub fn new(passes: Vec<Box<dyn Pass>>) -> Registry {
        Registry { passes }
    }

    pub fn get(&self, name: &str) -> Option<&dyn Pass> {
        self.passes.iter().find(|p| p.name() == name).map(|p| p.as_ref())
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn Pass> {
        self.passes.iter().map(|p| p.as_ref())
    }

    /// Parses `a,b,c` (spaces around names allowed; an empty text is the
    /// empty pipeline). An unknown name is answered with the valid ones.
    pub fn pipeline(&self, text: &str) -> Result<Pipeline<'_>, PassError> {
        if text.trim().is_empty() {
            return Ok(Pipeline { passes: vec![] });
        }
        let passes = text
            .split(',')
            .map(|name| {
                let name = name.trim();
                if name.is_empty() {
                    return Err(PassError::EmptyName(text.to_string()));
                }
                self.get(name).ok_or_else(|| PassError::Unknown {
                    name: name.to_string(),
                    suggestion: crate::syntax::suggest(name, self.names().into_iter()),
                    known: self.names(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Pipeline { passes })
    }
}
