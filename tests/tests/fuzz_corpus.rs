//! The fuzz corpus (`fuzz/corpus/<target>/`) replayed through ws2i's fuzz entry points: the
//! README's test command checks that every input a fuzzer kept is still parsed or refused
//! without a panic. The campaigns run with cargo-fuzz (docs/fuzzing.md).

use std::fs;

use ws2i_tests::workspace_root;

#[test]
fn every_corpus_input_is_parsed_or_refused_without_a_panic() {
    let corpus = workspace_root().join("fuzz/corpus");
    for (name, entry) in ws2i::fuzz::TARGETS {
        let dir = corpus.join(name);
        let inputs: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no corpus for fuzz target {name} at {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!inputs.is_empty(), "the corpus of {name} is empty");
        for input in inputs {
            // A fuzzer running beside the test replaces inputs with smaller ones.
            let Ok(data) = fs::read(&input) else { continue };
            let outcome = std::panic::catch_unwind(|| entry(&data));
            assert!(outcome.is_ok(), "fuzz target {name} panicked on {}", input.display());
        }
    }
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let manifest = fs::read_to_string(workspace_root().join("fuzz/Cargo.toml")).unwrap();
    for (name, _) in ws2i::fuzz::TARGETS {
        let src = workspace_root().join(format!("fuzz/fuzz_targets/{name}.rs"));
        let text = fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        assert!(text.contains(&format!("ws2i::fuzz::{name}(data)")), "{} drives another target", src.display());
        assert!(manifest.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml has no [[bin]] {name}");
    }
}
