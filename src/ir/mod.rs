//! The potc IR: a typed SSA graph of a closed set of ops.

pub mod attrs;
pub mod graph;
pub mod infer;
pub mod meaning;
pub mod op;
pub mod params;
pub mod printer;
pub mod types;
pub mod verify;

pub use graph::{Graph, Node, NodeId, OpError, RetypeError};
pub use infer::TypeError;
pub use meaning::Meaning;
pub use op::Op;
pub use printer::print;
pub use types::ShapeError;
pub use types::{Elem, Type};
pub use verify::{verify, VerifyError};
