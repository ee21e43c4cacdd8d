//! anamnesis 0.7.10 reads every conformance vector's header through our crate: the valid
//! ones with the tensors the manifest lists (name, dtype, shape, offsets) and the metadata,
//! the invalid ones refused. Usage: `anamnesis-client <vectors dir>`.

use std::path::Path;

use serde_json::Value;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: anamnesis-client <vectors dir>");
    let dir = Path::new(&dir);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let (mut read, mut refused, mut unsupported) = (0, 0, 0);
    for (name, expected) in manifest["valid"].as_object().unwrap() {
        let bytes = std::fs::read(dir.join(format!("valid/{name}.safetensors"))).unwrap();
        let header = match anamnesis::parse_safetensors_header(&bytes) {
            Ok(header) => header,
            // anamnesis's own dtype table is smaller than the format's (no F4, C64, ...): it
            // refuses those after our crate has read the header.
            Err(e) if e.to_string().contains("unsupported safetensors dtype") => {
                unsupported += 1;
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let tensors = expected["tensors"].as_object().unwrap();
        assert_eq!(header.tensors.len(), tensors.len(), "{name}");
        for entry in &header.tensors {
            let want = &tensors[&entry.name];
            assert_eq!(
                entry.dtype.to_string(),
                want["dtype"].as_str().unwrap(),
                "{name}"
            );
            let shape: Vec<usize> = want["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(entry.shape, shape, "{name} {}", entry.name);
            let offsets = want["data_offsets"].as_array().unwrap();
            assert_eq!(
                entry.data_offsets,
                (
                    offsets[0].as_u64().unwrap() as usize,
                    offsets[1].as_u64().unwrap() as usize
                ),
                "{name} {}",
                entry.name
            );
        }
        let metadata = expected["metadata"].as_object().filter(|m| !m.is_empty());
        match metadata {
            Some(want) => {
                let got = header.metadata.as_ref().expect(name);
                assert_eq!(got.len(), want.len(), "{name}");
                for (k, v) in want {
                    assert_eq!(got[k], v.as_str().unwrap(), "{name} {k}");
                }
            }
            None => assert!(
                header.metadata.as_ref().is_none_or(|m| m.is_empty()),
                "{name}"
            ),
        }
        read += 1;
    }
    for (name, _) in manifest["invalid"].as_object().unwrap() {
        let bytes = std::fs::read(dir.join(format!("invalid/{name}.safetensors"))).unwrap();
        // anamnesis reads the header alone (no data-length check), so only the vectors
        // whose header itself is wrong are its to refuse; none may crash it.
        if anamnesis::parse_safetensors_header(&bytes).is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0 && read > unsupported);
    println!(
        "anamnesis client: {read} valid headers read through serde into safetensors::tensor::Metadata ({unsupported} more with dtypes anamnesis does not support), {refused} invalid files refused"
    );
}
