//! Import's file writes on a second thread: while one thread decompresses and verifies the
//! archive, the other copies the bytes into the target's files, so the decompression and the
//! kernel's copy into the page cache (the larger part of an import) overlap. Buffers go back
//! and forth between the two; at most `DEPTH` are in flight.

use std::fs;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

const CHUNK: usize = 1 << 20;
const DEPTH: usize = 4;

enum Msg {
    /// The file the next chunks go to, and its name for messages.
    File(fs::File, String),
    /// A buffer and how many of its bytes to write.
    Chunk(Vec<u8>, usize),
}

pub struct Pipeline {
    tx: Option<SyncSender<Msg>>,
    back: Receiver<Vec<u8>>,
    /// A buffer taken but not sent (the read at the end of a file found nothing more).
    spare: Option<Vec<u8>>,
    made: usize,
    worker: Option<JoinHandle<Result<()>>>,
}

fn work(rx: Receiver<Msg>, back: SyncSender<Vec<u8>>) -> Result<()> {
    let mut cur: Option<(fs::File, String)> = None;
    for m in rx {
        match m {
            Msg::File(f, name) => cur = Some((f, name)),
            Msg::Chunk(b, n) => {
                if let Some((f, name)) = cur.as_mut() {
                    f.write_all(&b[..n])
                        .map_err(|e| Error::io(format!("writing {name}"), e))?;
                }
                let _ = back.send(b);
            }
        }
    }
    Ok(())
}

impl Pipeline {
    pub fn new() -> Result<Pipeline> {
        let (tx, rx) = mpsc::sync_channel(DEPTH);
        let (btx, back) = mpsc::sync_channel(DEPTH + 1);
        let worker = std::thread::Builder::new()
            .name("ckpt-import-writer".into())
            .spawn(move || work(rx, btx))
            .map_err(|e| Error::io("starting the import's writer thread", e))?;
        Ok(Pipeline {
            tx: Some(tx),
            back,
            spare: None,
            made: 0,
            worker: Some(worker),
        })
    }

    /// The writer's error, once it has stopped (its channel is closed).
    fn stopped(&mut self) -> Error {
        match self.finish() {
            Err(e) => e,
            Ok(()) => Error::io("the import's writer thread", "stopped early"),
        }
    }

    fn send(&mut self, m: Msg) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Err(self.stopped());
        };
        if tx.send(m).is_err() {
            return Err(self.stopped());
        }
        Ok(())
    }

    fn buffer(&mut self) -> Result<Vec<u8>> {
        if let Some(b) = self.spare.take() {
            return Ok(b);
        }
        if let Ok(b) = self.back.try_recv() {
            return Ok(b);
        }
        if self.made < DEPTH + 1 {
            self.made += 1;
            return Ok(vec![0; CHUNK]);
        }
        match self.back.recv() {
            Ok(b) => Ok(b),
            Err(_) => Err(self.stopped()),
        }
    }

    /// Copies all of `r` into `f` (written on the writer thread). Returns the bytes read;
    /// `Err(Ok(e))` is a read error (the archive's), `Err(Err(e))` the writer's.
    pub fn copy(
        &mut self,
        r: &mut dyn Read,
        f: fs::File,
        name: &str,
    ) -> std::result::Result<u64, std::result::Result<io::Error, Error>> {
        self.send(Msg::File(f, name.to_string())).map_err(Err)?;
        let mut total = 0u64;
        loop {
            let mut b = self.buffer().map_err(Err)?;
            // Fill the buffer: fewer, larger writes.
            let mut n = 0;
            while n < b.len() {
                match r.read(&mut b[n..]) {
                    Ok(0) => break,
                    Ok(g) => n += g,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Ok(e)),
                }
            }
            total += n as u64;
            let last = n < b.len();
            if n > 0 {
                self.send(Msg::Chunk(b, n)).map_err(Err)?;
            } else {
                self.spare = Some(b);
            }
            if last {
                return Ok(total);
            }
        }
    }

    /// Waits for every write to be done; the first write error, if any.
    pub fn finish(&mut self) -> Result<()> {
        self.tx = None;
        match self.worker.take() {
            Some(w) => w
                .join()
                .unwrap_or_else(|_| Err(Error::io("the import's writer thread", "panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
