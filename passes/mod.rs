//! The concrete passes, one file each. `registry()` is the one list of them;
//! the CLI and the tests build pipelines from it by name.

pub mod canonicalize;
pub mod fold_bn;
pub mod fuse_requant;
pub mod insert_fake_quant;
pub mod lower_int;
pub mod rules;
pub mod select_datapath;

use crate::pass::Registry;

/// Every pass potc knows, in the order `potc passes` lists them.
pub fn registry() -> Registry {
    Registry::new(vec![
        Box::new(canonicalize::Canonicalize),
        Box::new(fold_bn::FoldBn),
        Box::new(fold_bn::FoldLoneBn),
        Box::new(insert_fake_quant::InsertFakeQuant),
        Box::new(lower_int::LowerInt),
        Box::new(fuse_requant::FuseRequant),
        Box::new(select_datapath::SelectDatapath),
    ])
}
