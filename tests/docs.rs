//! The docs name what the code has: every op and attribute is in docs/ir.md,
//! every pass in the README.

use potc::ir::Op;
use potc::passes::registry;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn ir_reference_names_every_op_and_attribute() {
    let doc = read("docs/ir.md");
    for name in Op::TEXT_NAMES {
        let section = doc
            .split(&format!("### `{name}`"))
            .nth(1)
            .unwrap_or_else(|| panic!("no section for `{name}`"));
        let section = section.split("\n### ").next().unwrap();
        for attr in Op::with_defaults(name).unwrap().attr_names() {
            assert!(section.contains(&format!("`{attr}`")), "docs/ir.md: `{name}` lacks `{attr}`");
        }
    }
}

#[test]
fn readme_names_every_pass() {
    let readme = read("README.md");
    for pass in registry().names() {
        assert!(readme.contains(&format!("`{pass}`")), "README.md does not mention `{pass}`");
    }
}
