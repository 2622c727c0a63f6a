//! Threads racing on one shared limiter or policy, for the concurrency tests (included by
//! path by the tests that race).

// Each test binary that includes this file uses only some of it.
#![allow(dead_code)]

use std::sync::Barrier;
use std::thread;

use ratecore::policy::{Attribute, Request};

/// Runs `work(t, start)` for each `t` in `0..threads`, each on its own scoped thread, and
/// returns what each returned, in thread order. `start` is shared by all of them: a
/// thread that waits on it after its own set-up goes on only once every thread is ready,
/// so the calls that follow really race.
pub fn race<T: Send>(threads: usize, work: impl Fn(usize, &Barrier) -> T + Sync) -> Vec<T> {
    let start = Barrier::new(threads);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (work, start) = (&work, &start);
                scope.spawn(move || work(t, start))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// `threads` racing threads, each sending `attempts` client-credentials requests of app
/// `acme`, thread `t` as user `{user}-{t}` (ev.energy's client-credentials requests share
/// the app's limit whatever user they name); `admit(request, i)` sends the `i`-th and
/// says whether it was admitted. Returns how many were admitted.
pub fn hammer_app(
    threads: usize,
    attempts: u64,
    user: &str,
    admit: impl Fn(&Request<'_>, u64) -> bool + Sync,
) -> u64 {
    let admitted = race(threads, |t, start| {
        let user = format!("{user}-{t}");
        let attributes = [
            Attribute::new("auth", b"client_credentials"),
            Attribute::new("app", b"acme"),
            Attribute::new("user", user.as_bytes()),
        ];
        let request = Request::new("GET", "/v2/users/", &attributes);
        start.wait();
        (0..attempts).filter(|&i| admit(&request, i)).count() as u64
    });
    admitted.into_iter().sum()
}
