use super::*;
use crate::checkpoint::Checkpoint;
use crate::format::tensor::TensorView;
use crate::source::Source;
use crate::Dtype;

/// What the ring asked of the sink, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Wait(usize),
    Read,
    /// slot, destination, offset in it, offset in the slot, length.
    Copy(usize, usize, usize, usize, usize),
    Record(usize),
}

/// A device in host memory that logs every call; each copy lands at once.
#[derive(Default)]
struct Recorder {
    log: Vec<Event>,
    device: Vec<Vec<u8>>,
    /// `wait` on this slot fails.
    fail_wait: Option<usize>,
}

impl Sink<usize> for Recorder {
    type Error = String;

    fn wait(&mut self, slot: usize) -> Result<(), String> {
        self.log.push(Event::Wait(slot));
        match self.fail_wait == Some(slot) {
            true => Err(format!("device lost at slot {slot}")),
            false => Ok(()),
        }
    }

    fn copy(&mut self, slot: usize, t: Transfer<usize>, bytes: &[u8]) -> Result<(), String> {
        assert_eq!(bytes.len(), t.len);
        self.log
            .push(Event::Copy(slot, t.dst, t.dst_offset, t.src_offset, t.len));
        self.device[t.dst][t.dst_offset..t.dst_offset + t.len].copy_from_slice(bytes);
        Ok(())
    }

    fn record(&mut self, slot: usize) -> Result<(), String> {
        self.log.push(Event::Record(slot));
        Ok(())
    }

    fn read<F>(&mut self, read: F) -> Result<(), Error>
    where
        F: FnOnce() -> Result<(), Error> + Send,
    {
        self.log.push(Event::Read);
        read()
    }
}

/// A file in memory whose reads fail from byte `bad` on.
struct Failing {
    bytes: Vec<u8>,
    bad: u64,
}

impl Source for Failing {
    fn size(&self) -> Result<u64, Error> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        if offset + buf.len() as u64 > self.bad {
            return Err(Error::IoError(std::io::Error::other("bad sector")));
        }
        self.bytes.read_at(offset, buf)
    }
}

/// Tensors of U8 with the given lengths, named "t0", "t1", ..., in file order, byte `j` of
/// tensor `i` being `i * 16 + j` (wrapping).
fn serialized(lens: &[usize]) -> Vec<u8> {
    let data: Vec<Vec<u8>> = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (i * 16 + j) as u8).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                format!("t{i}"),
                TensorView::new(Dtype::U8, vec![d.len()], d).unwrap(),
            )
        })
        .collect();
    crate::serialize(views, None).unwrap()
}

fn tensor(i: usize, range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(|j| (i * 16 + j) as u8).collect()
}

fn checkpoint(lens: &[usize]) -> Checkpoint {
    Checkpoint::from_source("buffer", serialized(lens)).unwrap()
}

fn ring(slots: usize, slot_bytes: usize) -> StagingRing<Vec<u8>, usize> {
    let options = ReaderOptions {
        threads: 3,
        block_size: 2,
    };
    StagingRing::new(vec![vec![0u8; slot_bytes]; slots], options, true).unwrap()
}

#[test]
fn ranges_are_packed_in_order_and_split_across_slots() {
    let c = checkpoint(&[10, 3, 5]);
    let file = c.shard_file(0).unwrap();
    let mut ring = ring(2, 8);
    let mut sink = Recorder {
        device: vec![vec![0; 10], vec![0; 3], vec![0; 4]],
        ..Recorder::default()
    };
    ring.add(&mut sink, file, "t0", 0, 10, 0).unwrap();
    ring.add(&mut sink, file, "t1", 0, 3, 1).unwrap();
    ring.add(&mut sink, file, "t2", 1, 4, 2).unwrap();
    assert_eq!(ring.packed_bytes(), 1);
    ring.flush(&mut sink).unwrap();
    use Event::*;
    assert_eq!(
        sink.log,
        [
            // Slot 0: the first 8 bytes of t0, flushed as soon as it is full.
            Wait(0),
            Read,
            Copy(0, 0, 0, 0, 8),
            Record(0),
            // Slot 1: the rest of t0, t1, then 3 bytes of t2's range.
            Wait(1),
            Read,
            Copy(1, 0, 8, 0, 2),
            Copy(1, 1, 0, 2, 3),
            Copy(1, 2, 0, 5, 3),
            Record(1),
            // Slot 0 again, for the last byte.
            Wait(0),
            Read,
            Copy(0, 2, 3, 0, 1),
            Record(0),
        ]
    );
    assert_eq!(ring.flushes(), 3);
    assert_eq!(ring.packed_bytes(), 0);
    assert_eq!(
        sink.device,
        [tensor(0, 0..10), tensor(1, 0..3), tensor(2, 1..5)]
    );
}

#[test]
fn every_ring_shape_delivers_the_same_bytes_and_waits_before_each_refill() {
    let lens = [1, 17, 0, 64, 5, 33];
    let c = checkpoint(&lens);
    let file = c.shard_file(0).unwrap();
    for slots in 1..4 {
        for slot_bytes in [1, 3, 16, 64, 200] {
            let mut ring = ring(slots, slot_bytes);
            let mut sink = Recorder {
                device: lens.iter().map(|&n| vec![0; n]).collect(),
                ..Recorder::default()
            };
            for (i, &n) in lens.iter().enumerate() {
                ring.add(&mut sink, file, &format!("t{i}"), 0, n, i)
                    .unwrap();
            }
            ring.flush(&mut sink).unwrap();
            let expected: Vec<Vec<u8>> = lens
                .iter()
                .enumerate()
                .map(|(i, &n)| tensor(i, 0..n))
                .collect();
            assert_eq!(sink.device, expected, "{slots} x {slot_bytes}");
            let total: usize = lens.iter().sum();
            assert_eq!(ring.flushes(), total.div_ceil(slot_bytes));
            // Each fill: wait on the slot, read, its copies, record; slots round robin.
            let mut fill = 0;
            let mut state = vec!["idle"; slots];
            for e in &sink.log {
                match *e {
                    Event::Wait(s) => {
                        assert_eq!(s, fill % slots);
                        assert!(matches!(state[s], "idle" | "recorded"), "{:?}", sink.log);
                        state[s] = "waited";
                    }
                    Event::Read => assert_eq!(state[fill % slots], "waited"),
                    Event::Copy(s, ..) => {
                        assert_eq!(s, fill % slots);
                        state[s] = "copying";
                    }
                    Event::Record(s) => {
                        assert_eq!(state[s], "copying");
                        state[s] = "recorded";
                        fill += 1;
                    }
                }
            }
            assert_eq!(fill, ring.flushes());
        }
    }
}

#[test]
fn empty_ranges_and_empty_flushes_ask_nothing_of_the_sink() {
    let c = checkpoint(&[0, 4]);
    let file = c.shard_file(0).unwrap();
    let mut ring = ring(2, 4);
    let mut sink = Recorder {
        device: vec![vec![], vec![0; 4]],
        ..Recorder::default()
    };
    ring.flush(&mut sink).unwrap();
    ring.add(&mut sink, file, "t0", 0, 0, 0).unwrap();
    ring.add(&mut sink, file, "t1", 4, 0, 1).unwrap(); // empty, at the very end: in range
    ring.flush(&mut sink).unwrap();
    assert!(sink.log.is_empty());
    assert_eq!(ring.flushes(), 0);
}

#[test]
fn a_range_outside_its_tensor_or_an_unknown_tensor_is_refused_naming_it() {
    let c = checkpoint(&[6, 4]);
    let file = c.shard_file(0).unwrap();
    let mut ring = ring(1, 16);
    let mut sink = Recorder {
        device: vec![vec![0; 6], vec![0; 4]],
        ..Recorder::default()
    };
    ring.add(&mut sink, file, "t0", 0, 2, 0).unwrap();
    let err = ring.add(&mut sink, file, "t1", 3, 2, 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "byte range 3..5 is outside tensor t1, which has 4 bytes"
    );
    let err = ring
        .add(&mut sink, file, "t1", usize::MAX, 2, 1)
        .unwrap_err();
    assert!(err.to_string().contains("outside tensor t1"), "{err}");
    let err = ring.add(&mut sink, file, "nope", 0, 1, 1).unwrap_err();
    assert!(matches!(err, StagingError::Ring(Error::TensorNotFound(ref n)) if n == "nope"));
    // Nothing of the refused ranges was packed; the ring goes on.
    assert_eq!(ring.packed_bytes(), 2);
    ring.flush(&mut sink).unwrap();
    assert_eq!(sink.device[0][..2], tensor(0, 0..2)[..]);
}

#[test]
fn a_failed_read_is_reported_before_any_copy_and_stops_the_ring() {
    let bytes = serialized(&[8, 8]);
    let data_start = bytes.len() as u64 - 16;
    let source = Failing {
        bytes,
        bad: data_start + 12,
    };
    let c = Checkpoint::from_source("failing", source).unwrap();
    let file = c.shard_file(0).unwrap();
    let mut ring = ring(2, 8);
    let mut sink = Recorder {
        device: vec![vec![0; 8], vec![0; 8]],
        ..Recorder::default()
    };
    ring.add(&mut sink, file, "t0", 0, 8, 0).unwrap();
    let err = ring.add(&mut sink, file, "t1", 0, 8, 1).unwrap_err();
    assert!(
        matches!(err, StagingError::Ring(Error::IoError(_))),
        "{err:?}"
    );
    use Event::*;
    assert_eq!(
        sink.log,
        [Wait(0), Read, Copy(0, 0, 0, 0, 8), Record(0), Wait(1), Read]
    );
    let err = ring.flush(&mut sink).unwrap_err();
    assert!(err.to_string().contains("failed earlier"), "{err}");
    let err = ring.add(&mut sink, file, "t0", 0, 1, 0).unwrap_err();
    assert!(err.to_string().contains("failed earlier"), "{err}");
    assert_eq!(sink.log.len(), 6);
}

#[test]
fn a_sink_error_is_the_sinks_own() {
    let c = checkpoint(&[8]);
    let file = c.shard_file(0).unwrap();
    let mut ring = ring(2, 4);
    let mut sink = Recorder {
        device: vec![vec![0; 8]],
        fail_wait: Some(1),
        ..Recorder::default()
    };
    let err = ring.add(&mut sink, file, "t0", 0, 8, 0).unwrap_err();
    match err {
        StagingError::Sink(message) => assert_eq!(message, "device lost at slot 1"),
        other => panic!("{other:?}"),
    }
    // Slot 1 was never read: the wait failed first.
    assert_eq!(sink.log.last(), Some(&Event::Wait(1)));
    assert_eq!(sink.device[0][4..], [0; 4]);
}

#[test]
fn a_ring_needs_a_slot_and_no_empty_slot() {
    let none: Result<StagingRing<Vec<u8>, usize>, _> =
        StagingRing::new(vec![], ReaderOptions::default(), true);
    assert!(none
        .unwrap_err()
        .to_string()
        .contains("at least one buffer"));
    let empty: Result<StagingRing<Vec<u8>, usize>, _> =
        StagingRing::new(vec![vec![0; 4], vec![]], ReaderOptions::default(), true);
    assert!(empty.is_err());
}

#[test]
fn slots_of_different_sizes_each_fill_to_their_own_size() {
    let c = checkpoint(&[9]);
    let file = c.shard_file(0).unwrap();
    let options = ReaderOptions::default();
    let mut ring = StagingRing::new(vec![vec![0u8; 2], vec![0u8; 5]], options, false).unwrap();
    let mut sink = Recorder {
        device: vec![vec![0; 9]],
        ..Recorder::default()
    };
    ring.add(&mut sink, file, "t0", 0, 9, 0).unwrap();
    ring.flush(&mut sink).unwrap();
    let copies: Vec<_> = sink
        .log
        .iter()
        .filter_map(|e| match *e {
            Event::Copy(s, _, at, _, n) => Some((s, at, n)),
            _ => None,
        })
        .collect();
    assert_eq!(copies, [(0, 0, 2), (1, 2, 5), (0, 7, 2)]);
    assert_eq!(sink.device[0], tensor(0, 0..9));
    assert_eq!(ring.into_slots()[0], tensor(0, 7..9));
}
