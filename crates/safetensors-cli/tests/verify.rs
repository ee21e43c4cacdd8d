//! `safetensors verify` end to end: digests written by `shard`/`merge --checksum`, then a
//! flipped byte, a truncated shard, an index naming a tensor no shard holds, and the exit
//! statuses 0/1/2.

mod common;

use std::path::Path;

use common::*;

fn verify(args: &[&Path]) -> Run {
    let mut all = vec!["verify".as_ref()];
    all.extend(args.iter().map(|p| p.as_os_str()));
    run(all)
}

/// A 5-tensor model sharded with digests: `dir/sharded/` (3 shards).
fn sharded_with_digests(dir: &Path, algorithm: &str) -> std::path::PathBuf {
    let single = dir.join("model.safetensors");
    write_model(
        &single,
        &sample_tensors(3, 4096),
        Some(vec![("format", "pt")]),
    );
    let out = dir.join("sharded");
    let limit = "--max-shard-size=20KB";
    let checksum = format!("--checksum={algorithm}");
    let done = run([
        "shard".as_ref(),
        single.as_os_str(),
        out.as_os_str(),
        limit.as_ref(),
        checksum.as_ref(),
    ]);
    assert_eq!(done.code, 0, "{}", done.all());
    out
}

fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_checkpoint_with_digests_verifies() {
    for algorithm in ["sha256", "xxh3-64"] {
        let dir = tempfile::tempdir().unwrap();
        let out = sharded_with_digests(dir.path(), algorithm);
        let done = verify(&[&out]);
        assert_eq!(done.code, 0, "{}", done.all());
        assert!(
            done.stdout
                .contains("OK (3 shards, index consistent, 5 tensors")
                && done.stdout.contains("every checksum matches"),
            "{}",
            done.stdout
        );
        // inspect lists the input's own metadata and counts the digests instead of listing them.
        let shown = run(["inspect".as_ref(), out.as_os_str()]);
        assert!(
            shown.stdout.contains("  format: pt\n")
                && shown.stdout.contains("(and 5 tensor checksums recorded")
                && !shown.stdout.contains("__checksum__:"),
            "{}",
            shown.stdout
        );
        // The index JSON itself, and each shard alone.
        let index = out.join("model.safetensors.index.json");
        assert_eq!(verify(&[&index]).code, 0);
        assert_eq!(
            verify(&[&out.join("model-00002-of-00003.safetensors")]).code,
            0
        );
    }
}

#[test]
fn a_flipped_byte_fails_naming_shard_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let out = sharded_with_digests(dir.path(), "sha256");
    let shard = out.join("model-00003-of-00003.safetensors");
    flip_last_byte(&shard);
    let done = verify(&[&out]);
    assert_eq!(done.code, 1, "{}", done.all());
    assert!(
        done.stderr
            .contains("model-00003-of-00003.safetensors: tensor \"")
            && done.stderr.contains("sha256 checksum mismatch"),
        "{}",
        done.stderr
    );
    // `validate` checks only the structure, which still holds.
    assert_eq!(run(["validate".as_ref(), out.as_os_str()]).code, 0);
}

#[test]
fn a_truncated_shard_and_a_missing_tensor_fail() {
    let dir = tempfile::tempdir().unwrap();
    let out = sharded_with_digests(dir.path(), "xxh3-64");
    let shard = out.join("model-00001-of-00003.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 10]).unwrap();
    let done = verify(&[&out]);
    assert_eq!(done.code, 1, "{}", done.all());
    assert!(
        done.stderr.contains("model-00001-of-00003.safetensors: "),
        "{}",
        done.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let out = sharded_with_digests(dir.path(), "xxh3-64");
    let index = out.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index).unwrap().replace(
        "\"weight_map\": {",
        "\"weight_map\": {\n    \"ghost.weight\": \"model-00001-of-00003.safetensors\",",
    );
    std::fs::write(&index, text).unwrap();
    let done = verify(&[&out]);
    assert_eq!(done.code, 1, "{}", done.all());
    assert!(done.stderr.contains("ghost.weight"), "{}", done.stderr);

    // A shard the index names, missing: the checkpoint is incomplete (1), not unreadable (2).
    let dir = tempfile::tempdir().unwrap();
    let out = sharded_with_digests(dir.path(), "xxh3-64");
    std::fs::remove_file(out.join("model-00002-of-00003.safetensors")).unwrap();
    let done = verify(&[&out]);
    assert_eq!(done.code, 1, "{}", done.all());
    assert!(
        done.stderr
            .contains("model-00002-of-00003.safetensors does not exist"),
        "{}",
        done.stderr
    );
}

#[test]
fn files_without_digests_and_unreadable_paths() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("plain.safetensors");
    write_model(&single, &sample_tensors(2, 64), None);
    let done = verify(&[&single]);
    assert_eq!(done.code, 0, "{}", done.all());
    assert!(
        done.stdout.contains("no recorded checksums"),
        "{}",
        done.stdout
    );
    let strict = run([
        "verify".as_ref(),
        "--require-checksums".as_ref(),
        single.as_os_str(),
    ]);
    assert_eq!(strict.code, 1, "{}", strict.all());
    assert!(
        strict
            .stderr
            .contains("4 tensors have no recorded checksum"),
        "{}",
        strict.stderr
    );

    let missing = dir.path().join("missing.safetensors");
    assert_one_line_error(&verify(&[&missing]), "missing.safetensors");

    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    let done = verify(&[&garbage]);
    assert_eq!(done.code, 1, "{}", done.all());
    assert!(
        done.stderr
            .starts_with(&format!("{}: FAILED: ", garbage.display())),
        "{}",
        done.stderr
    );
}

#[test]
fn merge_and_shard_carry_digests_or_compute_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = sharded_with_digests(dir.path(), "sha256");
    // merge without --checksum keeps the shards' digests: every tensor is still covered.
    let merged = dir.path().join("merged.safetensors");
    let done = run(["merge".as_ref(), out.as_os_str(), merged.as_os_str()]);
    assert_eq!(done.code, 0, "{}", done.all());
    let strict = run([
        "verify".as_ref(),
        "--require-checksums".as_ref(),
        merged.as_os_str(),
    ]);
    assert_eq!(strict.code, 0, "{}", strict.all());
    // Sharding the merged file again keeps each shard's own digests only.
    let again = dir.path().join("again");
    let done = run([
        "shard".as_ref(),
        merged.as_os_str(),
        again.as_os_str(),
        "--max-shard-size=20KB".as_ref(),
    ]);
    assert_eq!(done.code, 0, "{}", done.all());
    let strict = run([
        "verify".as_ref(),
        "--require-checksums".as_ref(),
        again.as_os_str(),
    ]);
    assert_eq!(strict.code, 0, "{}", strict.all());

    // --checksum on a file without digests computes them.
    let plain = dir.path().join("plain.safetensors");
    write_model(&plain, &sample_tensors(2, 64), None);
    let with = dir.path().join("with");
    let done = run([
        "shard".as_ref(),
        plain.as_os_str(),
        with.as_os_str(),
        "--checksum=xxh3-64".as_ref(),
    ]);
    assert_eq!(done.code, 0, "{}", done.all());
    let strict = run([
        "verify".as_ref(),
        "--require-checksums".as_ref(),
        with.as_os_str(),
    ]);
    assert_eq!(strict.code, 0, "{}", strict.all());

    let bad = run([
        "shard".as_ref(),
        plain.as_os_str(),
        with.as_os_str(),
        "--checksum=md5".as_ref(),
    ]);
    assert_one_line_error(&bad, "md5");
}
