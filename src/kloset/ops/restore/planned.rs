//! Restore from a store where each request costs a round trip (S3, SFTP): planned per
//! packfile rather than read file by file.
//!
//! One thread walks the tree in order, creates the directories and hands files and symlinks
//! on. A planner reserves the chunks of those files in the same order (prefetch.rs, within
//! a budget of bytes held), groups them into ranged reads of their packfiles
//! (coalesce.rs), and many readers send those reads at once. Writers take the files in the
//! order they were planned and write each through the exporter exactly as the file-by-file
//! restore does (a temporary file renamed into place, its metadata set first), taking its
//! chunks as they arrive; every chunk is still authenticated and its id checked. A chunk
//! whose read failed is read again alone, so an error names what it names today. A
//! directory's metadata is set once the last of its entries is done.

use super::{store_file, stored_with_warning, Run};
use crate::kloset::blob::BlobType;
use crate::kloset::coalesce::{coalesce, Limits, Need, Read};
use crate::kloset::exporter::send_again;
use crate::kloset::id::BlobId;
use crate::kloset::importer::FileKind;
use crate::kloset::prefetch::{Prefetch, Reserve};
use crate::kloset::repo::Repository;
use crate::kloset::store::Resource;
use crate::kloset::tree::Entry;
use bytes::Bytes;
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a planned restore reads: how much it holds, how many reads at once, how they merge.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Bytes of chunks (as stored) reserved ahead of the writers.
    pub budget: u64,
    /// Reads in flight at most.
    pub readers: usize,
    pub limits: Limits,
    /// Reservations are sent as reads once this many bytes wait...
    pub batch: u64,
    /// ...or once the oldest has waited this long (or at once when the planner would
    /// wait for anything): long enough for a directory's files to be merged, short
    /// against a round trip.
    pub linger: Duration,
}

impl Default for Plan {
    fn default() -> Self {
        // Measured on the Linux tree (bench/wan.sh, docs/PERFORMANCE.md): a backup packs
        // the files its threads read side by side, so the files a restore wants next fill
        // about a third of each stretch of a packfile, the rest is wanted much later.
        // Merging over gaps of 128 KiB read 1.4x the bytes needed in ~1,500 GETs on one
        // backup (1.8x in 1,169 on another); 64 KiB: 1.3x in ~1,900; 256 KiB: 1.9x in
        // ~900, with more memory held (a read's buffer lives while any blob of it does)
        // and less work for the server.
        Self {
            budget: 32 << 20,
            readers: 24,
            limits: Limits { max_gap: 128 << 10, max_read: 4 << 20 },
            batch: 4 << 20,
            linger: Duration::from_millis(5),
        }
    }
}

/// Files and symlinks planned ahead of the writers: enough to keep reads large and many in
/// flight when files are small (8192 files of 4 KiB are 32 MiB).
const QUEUE: usize = 8192;
/// Files and symlinks walked ahead of the planner.
const WALKED: usize = 1024;

/// Whether a restore from this repository is planned: where requests cost a round trip.
pub fn wanted(repo: &Repository) -> bool {
    repo.store.remote()
}

/// A directory whose metadata waits for its entries; the walker holds one count until it
/// has handed them all on.
struct Dir {
    path: Vec<u8>,
    entry: Entry,
    left: AtomicUsize,
    parent: Option<Arc<Dir>>,
}

/// A file or a symlink to write.
struct Job {
    seq: u64,
    path: Vec<u8>,
    entry: Entry,
    parent: Option<Arc<Dir>>,
}

pub(super) fn restore(run: &Run, entry: &Entry, path: &[u8], plan: &Plan) {
    let pf = Prefetch::new(plan.budget);
    let (jobs_tx, jobs_rx) = bounded::<Arc<Job>>(WALKED);
    let (work_tx, work_rx) = bounded::<Arc<Job>>(QUEUE);
    let (reads_tx, reads_rx) = unbounded::<Read>();
    let writers = rayon::current_num_threads().max(1);
    let writing = AtomicUsize::new(writers);
    std::thread::scope(|s| {
        let (pf, writing) = (&pf, &writing);
        s.spawn(move || {
            // Every read was sent and its blobs filled or failed; or a reader panicked, and
            // the writers waiting for its blobs read them alone (then the panic goes on).
            let _close = Close(pf);
            std::thread::scope(|s| {
                for _ in 0..plan.readers.max(1) {
                    let rx = reads_rx.clone();
                    s.spawn(move || rx.iter().for_each(|r| fetch(run.repo, pf, r)));
                }
            });
        });
        for _ in 0..writers {
            let rx = work_rx.clone();
            s.spawn(move || {
                let _alive = Alive(writing);
                rx.iter().for_each(|j| write(run, pf, &j))
            });
        }
        drop(work_rx);
        s.spawn(move || planner(run.repo, plan, pf, jobs_rx, work_tx, reads_tx, writing));
        let mut w = Walker { run, tx: jobs_tx, seq: 0 };
        w.entry(entry, path, None);
    });
}

/// Closes the prefetch when dropped, unwinding included.
struct Close<'a>(&'a Prefetch);

impl Drop for Close<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Counts a writer out when it ends, panics included, so the planner never waits for it.
struct Alive<'a>(&'a AtomicUsize);

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Walker<'a, 'r> {
    run: &'a Run<'r>,
    tx: Sender<Arc<Job>>,
    seq: u64,
}

impl Walker<'_, '_> {
    fn entry(&mut self, e: &Entry, path: &[u8], parent: Option<&Arc<Dir>>) {
        let run = self.run;
        if run.stopped() {
            return;
        }
        run.count_xattrs(e, path);
        match e.kind() {
            FileKind::Dir => return self.dir(e, path, parent),
            _ if e.error.is_some() && !stored_with_warning(e) => run.not_stored(e, path),
            FileKind::File => {
                run.files.fetch_add(1, Ordering::Relaxed);
                if !run.link_later(e, path) {
                    return self.send(e, path, parent);
                }
            }
            FileKind::Symlink => return self.send(e, path, parent),
            FileKind::Special => run.special(e, path),
        }
        run.progress.item(path, e.info.size);
    }

    fn send(&mut self, e: &Entry, path: &[u8], parent: Option<&Arc<Dir>>) {
        if let Some(p) = parent {
            p.left.fetch_add(1, Ordering::AcqRel);
        }
        self.seq += 1;
        let job = Job { seq: self.seq, path: path.to_vec(), entry: e.clone(), parent: parent.cloned() };
        if let Err(e) = self.tx.send(Arc::new(job)) {
            // The planner is gone (it panicked): nobody writes this file.
            done(self.run, e.0.parent.as_ref());
        }
    }

    fn dir(&mut self, e: &Entry, path: &[u8], parent: Option<&Arc<Dir>>) {
        let run = self.run;
        let Some(tree) = run.open_dir(e, path) else { return };
        if let Some(p) = parent {
            p.left.fetch_add(1, Ordering::AcqRel);
        }
        let node = Arc::new(Dir { path: path.to_vec(), entry: e.clone(), left: 1.into(), parent: parent.cloned() });
        for (c, p) in run.children(&tree, path) {
            self.entry(c, &p, Some(&node));
        }
        done(run, Some(&node));
    }
}

/// One entry of `dir` is done: the last sets the directory's metadata, and so on upwards.
fn done(run: &Run, dir: Option<&Arc<Dir>>) {
    let mut d = dir.cloned();
    while let Some(dir) = d {
        if dir.left.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if !dir.path.is_empty() {
            if let Err(err) = run.exp.set_metadata(&dir.path, &dir.entry.info) {
                run.fail(&dir.path, &err.to_string());
            }
        }
        run.progress.item(&dir.path, dir.entry.info.size);
        d = dir.parent.clone();
    }
}

/// Reserves the chunks of each file in turn and sends the reads, many at once.
fn planner(
    repo: &Repository,
    plan: &Plan,
    pf: &Prefetch,
    jobs: Receiver<Arc<Job>>,
    work: Sender<Arc<Job>>,
    reads: Sender<Read>,
    writing: &AtomicUsize,
) {
    let mut p = Pending { needs: Vec::new(), bytes: 0, since: Instant::now(), uses: 0 };
    // Sends what was reserved: nothing reserved may wait on anything else (prefetch.rs).
    let flush = |p: &mut Pending| {
        for r in coalesce(std::mem::take(&mut p.needs), plan.limits) {
            let _ = reads.send(r);
        }
        p.bytes = 0;
        pf.wake();
    };
    loop {
        let next = if p.needs.is_empty() {
            jobs.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            jobs.recv_timeout((p.since + plan.linger).saturating_duration_since(Instant::now()))
        };
        let job = match next {
            Ok(j) => j,
            Err(RecvTimeoutError::Timeout) => {
                flush(&mut p);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let file = job.entry.kind() == FileKind::File;
        if file {
            pf.open(job.seq);
        }
        match work.try_send(job.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(j)) => {
                // The writers are a queue behind: send what waits, then let them take half
                // of the queue before planning on, so that reads stay large rather than
                // one per file freed.
                flush(&mut p);
                while work.len() > QUEUE / 2 {
                    if writing.load(Ordering::Acquire) == 0 {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                if work.send(j).is_err() {
                    return;
                }
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
        if !file {
            continue;
        }
        let mut shared = false;
        'chunks: for id in &job.entry.chunks {
            let loc = match repo.locate(BlobType::Chunk, id) {
                Ok(l) => l,
                Err(_) => {
                    pf.reserve_failed(job.seq, id);
                    shared = true;
                    continue;
                }
            };
            let length = loc.length as u64;
            loop {
                match pf.reserve(job.seq, id, length) {
                    Reserve::Fetch => {
                        if p.needs.is_empty() {
                            p.since = Instant::now();
                        }
                        let offset = loc.offset as u64;
                        p.needs.push(Need { id: *id, pack: loc.pack, offset, length, first_use: p.uses });
                        p.bytes += length;
                        break;
                    }
                    Reserve::Shared => {
                        shared = true;
                        break;
                    }
                    Reserve::Released => break 'chunks,
                    Reserve::Full => {
                        // Room for a whole batch before going on, or the reads would be
                        // as small as the blobs freed one at a time.
                        flush(&mut p);
                        pf.wait_room(length.max(plan.batch.min(plan.budget / 2)));
                    }
                }
            }
            p.uses += 1;
            if p.bytes >= plan.batch {
                flush(&mut p);
            }
        }
        if shared {
            pf.wake();
        }
        if !p.needs.is_empty() && p.since.elapsed() >= plan.linger {
            flush(&mut p);
        }
    }
    flush(&mut p);
}

/// Reservations not yet sent as reads.
struct Pending {
    needs: Vec<Need>,
    bytes: u64,
    /// When the oldest was made.
    since: Instant,
    /// Uses reserved so far: the order in which blobs are needed.
    uses: u64,
}

/// Sends one read and hands its blobs to the writers; a blob it did not bring (the read
/// failed, or the packfile is shorter than the index says) is marked failed.
fn fetch(repo: &Repository, pf: &Prefetch, r: Read) {
    let got = repo.store.get(Resource::Packfile, &r.pack.0, Some((r.offset, r.length))).map(Bytes::from);
    // The budget counts blobs, not the gaps a read spans between them: blobs of a read
    // that is mostly gap are copied out, so its buffer is freed now rather than held until
    // its last blob is written (memory stays within twice the budget).
    let needed: u64 = r.blobs.iter().map(|(_, _, len)| len).sum();
    let copy = needed * 2 < r.length;
    let blobs = r.blobs.into_iter().map(|(id, off, len)| {
        let end = (off + len) as usize;
        let data = got.as_ref().ok().filter(|d| end <= d.len()).map(|d| {
            let b = d.slice(off as usize..end);
            if copy {
                Bytes::copy_from_slice(&b)
            } else {
                b
            }
        });
        (id, data)
    });
    pf.fill(blobs.collect());
}

/// Writes one file or symlink, then counts it done in its directory.
fn write(run: &Run, pf: &Prefetch, job: &Job) {
    let (e, path) = (&job.entry, job.path.as_slice());
    if e.kind() == FileKind::Symlink {
        if !run.stopped() {
            run.symlink(e, path);
        }
    } else if run.stopped() {
        pf.release(job.seq, &e.chunks, 0);
    } else {
        let mut r = Planned { repo: run.repo, pf, job, next: 0, buf: Vec::new(), buf_id: None, pos: 0, failed: None };
        let res = panic::catch_unwind(AssertUnwindSafe(|| {
            run.exp.store_file_with_metadata(path, &mut r, e.info.size, &e.info)
        }));
        pf.release(job.seq, &e.chunks, r.next);
        // An exporter that panicked: what it held is given back and its directory counted
        // down, so the planner and the other writers go on, then the panic goes on up.
        let res = res.unwrap_or_else(|p| {
            done(run, job.parent.as_ref());
            panic::resume_unwind(p)
        });
        // The exporter wants the content again (exporter.rs): read file by file.
        let res = if res.as_ref().is_err_and(send_again) { store_file(run.repo, run.exp, path, e) } else { res };
        run.file_done(e, path, res);
    }
    run.progress.item(path, e.info.size);
    done(run, job.parent.as_ref());
}

/// A file's content from the blobs planned for it, in order.
struct Planned<'a> {
    repo: &'a Repository,
    pf: &'a Prefetch,
    job: &'a Job,
    /// Chunks taken so far.
    next: usize,
    buf: Vec<u8>,
    /// The chunk `buf` holds.
    buf_id: Option<BlobId>,
    pos: usize,
    /// Once a chunk failed, every later read fails alike: a reader asked again never moves
    /// past a chunk it could not give.
    failed: Option<String>,
}

impl io::Read for Planned<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let chunks = &self.job.entry.chunks;
        while self.pos == self.buf.len() {
            if let Some(why) = &self.failed {
                return Err(io::Error::other(why.clone()));
            }
            let Some(id) = chunks.get(self.next) else { return Ok(0) };
            let raw = self.pf.take(self.job.seq, self.next, id);
            self.next += 1;
            // Runs of one chunk (zeros in disk images) are verified once.
            if self.buf_id == Some(*id) {
                self.pos = 0;
                continue;
            }
            let plain = match raw {
                Some(raw) => self
                    .repo
                    .locate(BlobType::Chunk, id)
                    .and_then(|loc| self.repo.open_blob(BlobType::Chunk, id, &loc, &raw)),
                None => self.repo.get_blob(BlobType::Chunk, id),
            };
            match plain {
                Ok(p) => (self.buf, self.buf_id, self.pos) = (p, Some(*id), 0),
                Err(e) => {
                    (self.buf, self.buf_id, self.pos) = (Vec::new(), None, 0);
                    self.failed = Some(e.to_string());
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
