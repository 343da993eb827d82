//! Many small requests to a remote store at once: each costs a round trip, so the time to
//! read N of them is N / in-flight round trips, whatever the cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// `f` over every item, up to `n` at a time on their own threads; results in item order.
pub fn map<T: Sync, R: Send>(items: &[T], n: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = n.clamp(1, items.len().max(1));
    if items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                out.lock().expect("no worker panics holding it")[i] = Some(r);
            });
        }
    });
    out.into_inner().expect("workers joined").into_iter().map(|r| r.expect("every item was mapped")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_maps_all() {
        let v: Vec<u32> = (0..1000).collect();
        assert_eq!(super::map(&v, 32, |x| x * 2), v.iter().map(|x| x * 2).collect::<Vec<_>>());
        assert!(super::map(&Vec::<u32>::new(), 8, |x| *x).is_empty());
    }
}
