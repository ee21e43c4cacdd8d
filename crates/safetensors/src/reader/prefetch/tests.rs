use super::*;
use crate::format::tensor::TensorView;
use crate::source::read_header;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

/// A file in memory that counts its reads, can be slowed down, and fails reads touching
/// `bad`.
struct Mem {
    bytes: Vec<u8>,
    reads: AtomicUsize,
    delay: Duration,
    bad: Option<u64>,
}

impl Source for Mem {
    fn size(&self) -> Result<u64, Error> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        if let Some(bad) = self.bad {
            if (offset..offset + buf.len() as u64).contains(&bad) {
                return Err(Error::IoError(std::io::Error::other("bad sector")));
            }
        }
        self.bytes.read_at(offset, buf)
    }
}

/// Tensors "t0".."t{n-1}", each `len` bytes of U8 filled with its number, in file order.
fn file(n: usize, len: usize) -> Vec<u8> {
    let data: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; len]).collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let name = format!("t{i:02}");
            (name, TensorView::new(Dtype::U8, vec![len], d).unwrap())
        })
        .collect();
    crate::format::serialize::serialize(views, None).unwrap()
}

fn mem(bytes: Vec<u8>, delay: Duration, bad: Option<u64>) -> Arc<Mem> {
    Arc::new(Mem {
        bytes,
        reads: AtomicUsize::new(0),
        delay,
        bad,
    })
}

fn whole(n: usize) -> Vec<(String, Option<Vec<Index>>)> {
    (0..n).map(|i| (format!("t{i:02}"), None)).collect()
}

fn start(
    source: &Arc<Mem>,
    requests: Vec<(String, Option<Vec<Index>>)>,
    options: PrefetchOptions,
) -> Prefetch<Vec<u8>> {
    let header = read_header(&source.bytes[..]).unwrap();
    let plan = PrefetchPlan::for_file(&header.metadata, header.data_start(), requests).unwrap();
    let shared: SharedSource = source.clone();
    Prefetch::start(plan, vec![shared], options).unwrap()
}

fn zeroed(_: usize, t: &PlannedTensor) -> Result<Vec<u8>, Error> {
    Ok(vec![0u8; t.nbytes])
}

fn small(budget: usize) -> PrefetchOptions {
    PrefetchOptions {
        threads: 2,
        block_size: 16,
        budget,
        remote: false,
    }
}

#[test]
fn every_tensor_lands_once_with_its_bytes() {
    let source = mem(file(20, 100), Duration::ZERO, None);
    let loader = start(&source, whole(20), small(1000));
    let mut seen = Vec::new();
    while let Some(got) = loader.next(&mut zeroed) {
        let (i, bytes) = got.unwrap();
        assert_eq!(bytes, vec![i as u8; 100]);
        seen.push(i);
    }
    seen.sort();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    assert_eq!(loader.held(), 0);
}

#[test]
fn indices_are_planned_by_the_slicer() {
    // A 4x3 U8 tensor 0..12: rows 3 and 1 (step -2), last column.
    let data: Vec<u8> = (0..12).collect();
    let view = TensorView::new(Dtype::U8, vec![4, 3], &data).unwrap();
    let bytes = crate::format::serialize::serialize([("m", view)], None).unwrap();
    let source = mem(bytes, Duration::ZERO, None);
    let index = vec![
        Index::Slice {
            start: None,
            stop: None,
            step: Some(-2),
        },
        Index::Int(-1),
    ];
    let loader = start(&source, vec![("m".into(), Some(index))], small(1 << 20));
    assert_eq!(loader.plan().tensors()[0].shape, [2]);
    assert_eq!(loader.take(0, &mut zeroed).unwrap(), [11, 5]);
}

#[test]
fn many_short_runs_are_read_as_covering_spans() {
    // One U8 column of a 512x64 tensor: 512 one-byte runs, 64 bytes apart.
    let data: Vec<u8> = (0..512 * 64).map(|i| (i % 251) as u8).collect();
    let view = TensorView::new(Dtype::U8, vec![512, 64], &data).unwrap();
    let bytes = crate::format::serialize::serialize([("m", view)], None).unwrap();
    let source = mem(bytes, Duration::ZERO, None);
    let index = vec![
        Index::Slice {
            start: None,
            stop: None,
            step: None,
        },
        Index::Int(5),
    ];
    let options = PrefetchOptions {
        block_size: 1 << 20,
        ..small(1 << 20)
    };
    let loader = start(&source, vec![("m".into(), Some(index))], options);
    let got = loader.take(0, &mut zeroed).unwrap();
    let want: Vec<u8> = (0..512).map(|r| data[r * 64 + 5]).collect();
    assert_eq!(got, want);
    // One covering read (plus nothing else), not 512.
    assert_eq!(source.reads.load(Ordering::SeqCst), 1);
}

#[test]
fn the_budget_bounds_what_is_read_ahead_of_take() {
    let source = mem(file(10, 100), Duration::ZERO, None);
    let loader = start(&source, whole(10), small(250));
    let mut allocs = 0;
    let mut alloc = |i: usize, t: &PlannedTensor| {
        allocs += 1;
        zeroed(i, t)
    };
    // Two tensors fit: the third waits until one is taken.
    assert_eq!(loader.refill(&mut alloc).unwrap(), 2);
    assert_eq!(loader.held(), 200);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(loader.refill(&mut alloc).unwrap(), 0);
    let first = loader.take(0, &mut alloc).unwrap();
    assert_eq!(first, vec![0; 100]);
    assert!(loader.held() <= 250, "{}", loader.held());
    let mut rest = 1;
    while let Some(got) = loader.next(&mut alloc) {
        got.unwrap();
        assert!(loader.held() <= 250);
        rest += 1;
    }
    assert_eq!(rest, 10);
    assert_eq!(allocs, 10);
}

#[test]
fn a_tensor_larger_than_the_budget_is_read_alone() {
    let source = mem(file(3, 100), Duration::ZERO, None);
    let loader = start(&source, whole(3), small(10));
    let mut n = 0;
    while let Some(got) = loader.next(&mut zeroed) {
        got.unwrap();
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn take_out_of_order_jumps_the_queue_and_twice_is_an_error() {
    let source = mem(file(50, 64), Duration::from_millis(1), None);
    let loader = start(&source, whole(50), small(64 * 4));
    loader.refill(&mut zeroed).unwrap();
    // Tensor 40 is far past the budget: allocated and read now.
    assert_eq!(loader.take(40, &mut zeroed).unwrap(), vec![40; 64]);
    let err = loader.take(40, &mut zeroed).unwrap_err().to_string();
    assert!(err.contains("t40 was already taken"), "{err}");
    assert!(loader.take(50, &mut zeroed).is_err());
    let mut others = 0;
    while let Some(got) = loader.next(&mut zeroed) {
        assert_ne!(got.unwrap().0, 40);
        others += 1;
    }
    assert_eq!(others, 49);
}

#[test]
fn a_failed_read_is_the_error_of_its_tensor_only() {
    let bytes = file(4, 1000);
    let header = read_header(&bytes[..]).unwrap();
    let t2 = header.data_start() + 2000 + 10;
    let source = mem(bytes, Duration::ZERO, Some(t2));
    // One tensor a batch: the failure stays with t2.
    let options = PrefetchOptions {
        threads: 1,
        block_size: 1000,
        ..small(1 << 20)
    };
    let loader = start(&source, whole(4), options);
    let err = loader.take(2, &mut zeroed).unwrap_err().to_string();
    assert!(err.contains("t02") && err.contains("bad sector"), "{err}");
    for i in [0, 1, 3] {
        assert_eq!(loader.take(i, &mut zeroed).unwrap(), vec![i as u8; 1000]);
    }
}

#[test]
fn close_mid_load_stops_the_reader_at_its_next_block() {
    // 64 KiB read in 16-byte blocks of 2 ms each by 2 threads: about 8 s if nothing stops it.
    let source = mem(file(1, 1 << 16), Duration::from_millis(2), None);
    let loader = start(&source, whole(1), small(1 << 20));
    loader.refill(&mut zeroed).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let began = Instant::now();
    loader.close();
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
    let reads = source.reads.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        source.reads.load(Ordering::SeqCst),
        reads,
        "reads after close"
    );
    assert!(loader
        .take(0, &mut zeroed)
        .unwrap_err()
        .to_string()
        .contains("closed"));
    assert!(matches!(loader.next(&mut zeroed), Some(Err(_))));
}

#[test]
fn plan_errors() {
    let bytes = file(2, 8);
    let header = read_header(&bytes[..]).unwrap();
    let plan = |requests: Vec<(&str, Option<Vec<Index>>)>| {
        PrefetchPlan::for_file(&header.metadata, header.data_start(), requests)
    };
    assert!(matches!(
        plan(vec![("nope", None)]),
        Err(Error::TensorNotFound(_))
    ));
    let twice = plan(vec![("t01", None), ("t01", None)])
        .unwrap_err()
        .to_string();
    assert!(twice.contains("planned twice"), "{twice}");
    assert!(matches!(
        plan(vec![("t00", Some(vec![Index::Int(8)]))]),
        Err(Error::InvalidSlice(_))
    ));
    // File order whatever the request order.
    let ok = plan(vec![("t01", None), ("t00", None)]).unwrap();
    let names: Vec<&str> = ok.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["t00", "t01"]);
    assert_eq!(ok.total_bytes(), 16);
    assert_eq!(ok.tensors()[1].contiguous(), Some(0..8));
}

#[test]
fn a_buffer_of_the_wrong_size_is_refused() {
    let source = mem(file(1, 8), Duration::ZERO, None);
    let loader = start(&source, whole(1), small(1 << 20));
    let mut short = |_: usize, _: &PlannedTensor| Ok(vec![0u8; 3]);
    let err = loader.take(0, &mut short).unwrap_err().to_string();
    assert!(err.contains("3 bytes"), "{err}");
}

#[test]
fn a_sharded_checkpoint_is_read_across_its_shards() {
    // 6 tensors of 100 bytes in shards of at most 200 bytes: 3 shards.
    let data: Vec<Vec<u8>> = (0..6u8)
        .map(|i| (0..100).map(|j| i * 10 + j % 7).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                format!("t{i}"),
                TensorView::new(Dtype::U8, vec![10, 10], d).unwrap(),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    crate::checkpoint::shard_index::save_sharded(views, None, dir.path(), 200).unwrap();
    let checkpoint = Checkpoint::open(dir.path()).unwrap();
    assert_eq!(checkpoint.shard_count(), 3);
    // Rows 2..5 of t4, column 3 of t1 (strided), t5 whole: three of the shards' tensors.
    let rows = Index::Slice {
        start: Some(2),
        stop: Some(5),
        step: None,
    };
    let all = Index::Slice {
        start: None,
        stop: None,
        step: None,
    };
    let requests = vec![
        ("t4", Some(vec![rows])),
        ("t1", Some(vec![all, Index::Int(3)])),
        ("t5", None),
    ];
    let plan = PrefetchPlan::new(&checkpoint, requests).unwrap();
    let names: Vec<&str> = plan.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["t1", "t4", "t5"]); // shard order, then data order
    assert_eq!(plan.files().len(), 2); // t4 and t5 share a shard, t1 has its own
    let sources = plan.sources(&checkpoint).unwrap();
    let loader: Prefetch<Vec<u8>> = Prefetch::start(plan, sources, small(1 << 20)).unwrap();
    let t1: Vec<u8> = (0..10).map(|r| data[1][r * 10 + 3]).collect();
    assert_eq!(loader.take(0, &mut zeroed).unwrap(), t1);
    assert_eq!(loader.take(1, &mut zeroed).unwrap(), data[4][20..50]);
    assert_eq!(loader.take(2, &mut zeroed).unwrap(), data[5]);
}
