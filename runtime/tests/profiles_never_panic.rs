//! Hostile profiles: whatever a profile file holds, loading it gives a profile or an error
//! naming the file, never a panic. Inputs are the built-in profiles mutated byte by byte, cut
//! short, and arbitrary text; a mutated `extends` may name another built-in, or itself.

use proptest::prelude::*;
use sandbox_runtime::profile;

const BUILT_IN: &[&str] = &[
    include_str!("../../profiles/strict.toml"),
    include_str!("../../profiles/standard.toml"),
    include_str!("../../profiles/gate.toml"),
    include_str!("../../profiles/networked.toml"),
    include_str!("../../profiles/permissive.toml"),
];

fn mutated() -> impl Strategy<Value = String> {
    let edits = prop::collection::vec(
        (
            any::<usize>(),
            prop_oneof![
                any::<u8>(),
                prop::sample::select(b"[]{}=\"'\n.,0123456789kKmMgGsh-#".to_vec()),
            ],
            0u8..3,
        ),
        0..10,
    );
    let seed = (0..BUILT_IN.len(), edits).prop_map(|(index, edits)| {
        let mut bytes = BUILT_IN[index].as_bytes().to_vec();
        for (at, byte, how) in edits {
            let at = at % (bytes.len() + 1);
            match how {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    });
    prop_oneof![4 => seed, 1 => ".{0,300}"]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn loading_a_profile_never_panics(text in mutated()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostile.toml");
        std::fs::write(&path, &text).unwrap();
        let path_text = path.display().to_string();
        if let Err(error) = profile::load_with_search_path(&path_text, &[dir.path().to_owned()]) {
            let message = error.to_string();
            prop_assert!(message.contains("hostile.toml"), "{message}");
        }
    }
}
