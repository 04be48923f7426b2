//! The direction of use between the library's modules (docs/architecture.md), checked on the
//! sources: a module may name only modules of a lower rank, never a sibling or one above it.

/// Lowest first. Modules of one rank do not use each other.
const RANKS: &[&[&str]] = &[
    &[
        "contract",
        "digest",
        "units",
        "progress",
        "scratch",
        "Digest",
        "Size",
        "HumanDuration",
    ],
    &["sandbox"],
    &["layer"],
    &["image"],
    &["source"],
    &["s2i", "containerfile", "run"],
    &["pipeline"],
    &["generate"],
    &["cli"],
    &["fuzz"],
];

fn rank(module: &str) -> Option<usize> {
    RANKS.iter().position(|r| r.contains(&module))
}

/// Every module `text` names as `crate::NAME` or inside `crate::{A, B::c}`.
fn named(text: &str) -> Vec<&str> {
    let ident = |s: &str| -> usize {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let mut out = Vec::new();
    for (i, m) in text.match_indices("crate::") {
        let rest = &text[i + m.len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                out.extend(
                    group
                        .split(',')
                        .map(str::trim)
                        .map(|p| &p[..ident(p)])
                        .filter(|p| !p.is_empty()),
                );
            }
            None => out.push(&rest[..ident(rest)]),
        }
    }
    out
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let module = rel
                .iter()
                .next()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            let Some(own) = rank(&module) else { continue };
            let text = std::fs::read_to_string(&path).unwrap();
            for name in named(&text) {
                match rank(name) {
                    Some(r) if r < own => {}
                    Some(_) if name == module => {}
                    Some(_) => wrong.push(format!("{} names crate::{name}", rel.display())),
                    None => wrong.push(format!(
                        "{} names crate::{name}, a module not in RANKS",
                        rel.display()
                    )),
                }
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "modules naming ones they may not use:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn names_are_found_in_paths_and_groups() {
    let text =
        "use crate::image::Store;\nuse crate::{units::Size, Digest};\n// [`crate::s2i::build`]";
    assert_eq!(named(text), ["image", "units", "Digest", "s2i"]);
}
