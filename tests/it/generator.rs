//! The generator's claim, same parameters and same bytes whatever the thread count, on
//! pools of 1, 2, 3 and 8 threads and through `cobuy --threads`, with customers enough for
//! three of its parallel blocks (8,192 customers each), so that both the blocks and the
//! work inside each are split differently on each pool.

use cobuy::generate::{GenerateParams, generate};

use crate::common::run_cobuy;

#[test]
fn same_bytes_for_any_thread_count() {
    let p = GenerateParams::new(20_000, 500, 60_000, 11);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut out = Vec::new();
            assert_eq!(generate(&p, &mut out).unwrap(), 60_000);
            out
        })
    };
    let one = run(1);
    let text = std::str::from_utf8(&one).unwrap();
    assert_eq!(text.lines().count(), 60_001);
    // Customers of the third block are written, after the first two blocks' customers.
    let customer = |l: &str| l.split(',').next().unwrap()[1..].parse::<u32>().unwrap();
    let order: Vec<u32> = text.lines().skip(1).map(customer).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]) && *order.last().unwrap() >= 2 * 8_192, "customers in order");
    for threads in [2, 3, 8] {
        assert!(run(threads) == one, "{threads} threads give other bytes");
    }

    let dir = tempfile::tempdir().unwrap();
    for threads in ["1", "4"] {
        let out = format!("gen-{threads}.csv");
        let args = ["--threads", threads, "generate", "--customers", "20000", "--items", "500", "--rows", "60000"];
        let o = run_cobuy(dir.path(), &[&args[..], &["--seed", "11", "--out", &out]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::read(dir.path().join(&out)).unwrap() == one, "cobuy --threads {threads} generate");
    }
}
