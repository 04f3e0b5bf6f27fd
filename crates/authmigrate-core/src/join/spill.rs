//! The spilled half of the password join: the binary framing of the temp files, the
//! temp files themselves, and the Grace hash join over them (steps 1–5 of the
//! module docs of [`super`]).

use super::*;

// ---------------------------------------------------------------------------------
// Binary framing of the temp files

const NONE_LEN: u32 = u32::MAX;

fn put_u64(w: &mut impl Write, v: u64) -> io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn put_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    let len = u32::try_from(s.len())
        .ok()
        .filter(|&l| l != NONE_LEN)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "string longer than 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn put_opt(w: &mut impl Write, s: Option<&str>) -> io::Result<()> {
    match s {
        Some(s) => put_str(w, s),
        None => w.write_all(&NONE_LEN.to_le_bytes()),
    }
}

/// Reads a `u64`, or `None` at a clean end of file.
fn get_u64_or_eof(r: &mut impl Read) -> io::Result<Option<u64>> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(u64::from_le_bytes(buf)))
}

fn get_u8(r: &mut impl Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn get_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn get_opt(r: &mut impl Read) -> io::Result<Option<String>> {
    let len = get_u32(r)?;
    if len == NONE_LEN {
        return Ok(None);
    }
    let mut v = vec![0u8; len as usize];
    r.read_exact(&mut v)?;
    String::from_utf8(v)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "invalid utf-8 in temp file"))
}

fn get_str(r: &mut impl Read) -> io::Result<String> {
    get_opt(r)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "missing string in temp file"))
}

// ---------------------------------------------------------------------------------
// Temp files

/// Creates a new file readable and writable by the owner only.
fn create_private(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).read(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| Error::io("create", path, e))
}

fn open_reader(path: &Path, cap: usize) -> Result<BufReader<File>> {
    File::open(path)
        .map(|f| BufReader::with_capacity(cap, f))
        .map_err(|e| Error::io("read", path, e))
}

/// A temp file being written.
struct TempWriter {
    path: PathBuf,
    w: BufWriter<File>,
    records: u64,
}

impl TempWriter {
    fn create(path: PathBuf, cap: usize) -> Result<Self> {
        let f = create_private(&path)?;
        Ok(Self {
            w: BufWriter::with_capacity(cap, f),
            path,
            records: 0,
        })
    }

    fn err(&self, e: io::Error) -> Error {
        Error::io("write", &self.path, e)
    }

    /// Flushes and closes; returns the path and the record count.
    fn finish(self) -> Result<(PathBuf, u64)> {
        let Self { path, w, records } = self;
        w.into_inner()
            .map_err(|e| Error::io("write", &path, e.into_error()))?;
        Ok((path, records))
    }
}

/// Hash entries staged to one file before the partition count is known.
pub(super) struct Staging {
    dir: tempfile::TempDir,
    file: TempWriter,
    id_cost: u64,
    email_cost: u64,
}

impl Staging {
    pub(super) fn create(options: &JoinOptions) -> Result<Self> {
        let mut b = tempfile::Builder::new();
        b.prefix("authmigrate-join-");
        let dir = match &options.temp_dir {
            Some(d) => b
                .tempdir_in(d)
                .map_err(|e| Error::io("create a temp directory in", d, e))?,
            None => b
                .tempdir()
                .map_err(|e| Error::io("create a temp directory in", std::env::temp_dir(), e))?,
        };
        let file = TempWriter::create(dir.path().join("hashes-staged"), STREAM_BUF)?;
        Ok(Self {
            dir,
            file,
            id_cost: 0,
            email_cost: 0,
        })
    }

    pub(super) fn push(&mut self, ordinal: u64, e: &NormEntry) -> Result<()> {
        let cost = |k: &Option<String>| {
            k.as_ref()
                .map_or(0, |k| (PART_ENTRY_COST + k.len() + e.hash.len()) as u64)
        };
        self.id_cost += cost(&e.id);
        self.email_cost += cost(&e.email);
        let w = &mut self.file.w;
        let r = (|| {
            put_u64(w, ordinal)?;
            put_opt(w, e.id.as_deref())?;
            put_opt(w, e.email.as_deref())?;
            put_str(w, e.hash.expose())
        })();
        r.map_err(|err| self.file.err(err))?;
        self.file.records += 1;
        Ok(())
    }
}

/// `parts` temp files written side by side, one per partition.
struct PartWriters(Vec<TempWriter>);

impl PartWriters {
    fn create(dir: &Path, name: &str, parts: usize) -> Result<Self> {
        (0..parts)
            .map(|p| TempWriter::create(dir.join(format!("{name}-{p}")), PART_BUF))
            .collect::<Result<Vec<_>>>()
            .map(Self)
    }

    fn get(&mut self, key: &str) -> &mut TempWriter {
        let p = partition(key, self.0.len());
        &mut self.0[p]
    }

    fn finish(self) -> Result<Vec<(PathBuf, u64)>> {
        self.0.into_iter().map(TempWriter::finish).collect()
    }
}

/// Hash entries of one partition, keyed by one key kind: first entry wins.
fn load_partition(
    path: &Path,
    records: u64,
    stats: &mut JoinStats,
) -> Result<HashMap<String, (u64, Secret)>> {
    let mut map = HashMap::with_capacity(usize::try_from(records).unwrap_or(0));
    let mut r = open_reader(path, STREAM_BUF)?;
    let rd = |e| Error::io("read", path, e);
    while let Some(ord) = get_u64_or_eof(&mut r).map_err(rd)? {
        let key = get_str(&mut r).map_err(rd)?;
        let hash = Secret::from(get_str(&mut r).map_err(rd)?);
        match map.entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => stats.duplicate_keys += 1,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((ord, hash));
            }
        }
    }
    Ok(map)
}

fn remove_quietly(path: &Path) {
    // Early clean-up to save disk; the temp dir removes whatever is left anyway.
    let _ = std::fs::remove_file(path);
}

// ---------------------------------------------------------------------------------
// Spilled join

pub(super) fn spill_join<U>(
    users: U,
    staging: Staging,
    budget: usize,
    stats: &mut JoinStats,
) -> Result<SpillOutput>
where
    U: Iterator<Item = InputRecord>,
{
    let Staging {
        dir,
        file,
        id_cost,
        email_cost,
    } = staging;
    let (staged_path, _) = file.finish()?;
    let target = (budget / 2).max(1) as u64;
    let parts = (id_cost.max(email_cost).div_ceil(target) as usize).clamp(2, MAX_PARTITIONS);
    stats.partitions = parts as u64;
    let root = dir.path().to_path_buf();

    // 1. Partition the hash entries under each key.
    let mut hid = PartWriters::create(&root, "hash-id", parts)?;
    let mut hem = PartWriters::create(&root, "hash-email", parts)?;
    {
        let mut r = open_reader(&staged_path, STREAM_BUF)?;
        let rd = |e| Error::io("read", &staged_path, e);
        while let Some(ord) = get_u64_or_eof(&mut r).map_err(rd)? {
            let id = get_opt(&mut r).map_err(rd)?;
            let email = get_opt(&mut r).map_err(rd)?;
            let hash = Secret::from(get_str(&mut r).map_err(rd)?);
            for (key, parts) in [(id, &mut hid), (email, &mut hem)] {
                if let Some(key) = key {
                    let w = parts.get(&key);
                    let res = put_u64(&mut w.w, ord)
                        .and_then(|()| put_str(&mut w.w, &key))
                        .and_then(|()| put_str(&mut w.w, hash.expose()));
                    res.map_err(|e| w.err(e))?;
                    w.records += 1;
                }
            }
        }
    }
    remove_quietly(&staged_path);
    let hid = hid.finish()?;
    let hem = hem.finish()?;

    // 2. Spill the users in order; partition their keys.
    let mut spill = TempWriter::create(root.join("users"), STREAM_BUF)?;
    let mut uid = PartWriters::create(&root, "user-id", parts)?;
    let mut uem = PartWriters::create(&root, "user-email", parts)?;
    for (seq, rec) in users.enumerate() {
        let seq = seq as u64;
        write_user(&mut spill, &rec)?;
        let Ok(user) = &rec.record else { continue };
        stats.users += 1;
        if user.password.is_some() {
            stats.kept_password += 1;
            continue;
        }
        let email = user.email.as_deref().and_then(email_key);
        if let Some(id) = id_key(user) {
            let w = uid.get(id);
            let res = put_u64(&mut w.w, seq)
                .and_then(|()| put_str(&mut w.w, id))
                .and_then(|()| put_opt(&mut w.w, email.as_deref()));
            res.map_err(|e| w.err(e))?;
        } else if let Some(email) = email {
            write_email_key(&mut uem, seq, &email)?;
        }
    }
    let (users_path, _) = spill.finish()?;
    let uid = uid.finish()?;

    let mut used = BitSet::with_len(stats.hashes);
    let mut runs: Vec<PathBuf> = Vec::new();
    let mut run_no = 0usize;
    let mut new_run = |runs: &mut Vec<PathBuf>| -> Result<TempWriter> {
        run_no += 1;
        let w = TempWriter::create(root.join(format!("run-{run_no}")), STREAM_BUF)?;
        runs.push(w.path.clone());
        Ok(w)
    };

    // 3. Round 1: by id. Each partition's user keys are in input order, so its
    // matches form a sorted run as they come.
    for ((hpath, hcount), (upath, _)) in hid.iter().zip(&uid) {
        let map = load_partition(hpath, *hcount, stats)?;
        remove_quietly(hpath);
        let mut run = new_run(&mut runs)?;
        let mut r = open_reader(upath, STREAM_BUF)?;
        let rd = |e| Error::io("read", upath, e);
        while let Some(seq) = get_u64_or_eof(&mut r).map_err(rd)? {
            let id = get_str(&mut r).map_err(rd)?;
            let email = get_opt(&mut r).map_err(rd)?;
            if let Some((ord, hash)) = map.get(&id) {
                used.set(*ord);
                stats.by_id += 1;
                write_match(&mut run, seq, BY_ID, hash)?;
            } else if let Some(email) = email {
                write_email_key(&mut uem, seq, &email)?;
            }
        }
        drop(r);
        remove_quietly(upath);
        let (path, records) = run.finish()?;
        if records == 0 {
            runs.pop();
            remove_quietly(&path);
        }
    }
    let uem = uem.finish()?;

    // 4. Round 2: by e-mail. Inputs come from several sources, so matches are
    // sorted before they are written (and flushed as extra runs past the budget).
    let match_budget = (budget / 4).max(1);
    for ((hpath, hcount), (upath, _)) in hem.iter().zip(&uem) {
        let map = load_partition(hpath, *hcount, stats)?;
        remove_quietly(hpath);
        let mut matches: Vec<(u64, Secret)> = Vec::new();
        let mut cost = 0usize;
        let mut r = open_reader(upath, STREAM_BUF)?;
        let rd = |e| Error::io("read", upath, e);
        while let Some(seq) = get_u64_or_eof(&mut r).map_err(rd)? {
            let email = get_str(&mut r).map_err(rd)?;
            if let Some((ord, hash)) = map.get(&email) {
                used.set(*ord);
                stats.by_email += 1;
                cost += MATCH_COST + hash.len();
                matches.push((seq, hash.clone()));
                if cost > match_budget {
                    flush_matches(&mut matches, new_run(&mut runs)?)?;
                    cost = 0;
                }
            }
        }
        drop(r);
        remove_quietly(upath);
        if !matches.is_empty() {
            flush_matches(&mut matches, new_run(&mut runs)?)?;
        }
    }
    stats.unused_hashes = stats.hashes - used.count();
    stats.unmatched_users = stats.users - stats.kept_password - stats.by_id - stats.by_email;

    // 5. Merge cascades while there are too many runs to open at once.
    while runs.len() > MAX_FAN_IN {
        let group: Vec<PathBuf> = runs.drain(..MAX_FAN_IN).collect();
        let mut merged = RunMerge::open(&group)?;
        let mut out = new_run(&mut runs)?;
        while let Some((seq, kind, hash)) = merged.pop()? {
            write_match(&mut out, seq, kind, &hash)?;
        }
        out.finish()?;
        for p in &group {
            remove_quietly(p);
        }
    }

    Ok(SpillOutput {
        merge: RunMerge::open(&runs)?,
        users: open_reader(&users_path, STREAM_BUF)?,
        users_path,
        seq: 0,
        buf: Vec::new(),
        _dir: dir,
    })
}

fn write_email_key(parts: &mut PartWriters, seq: u64, email: &str) -> Result<()> {
    let w = parts.get(email);
    put_u64(&mut w.w, seq)
        .and_then(|()| put_str(&mut w.w, email))
        .map_err(|e| w.err(e))?;
    w.records += 1;
    Ok(())
}

fn write_match(w: &mut TempWriter, seq: u64, kind: u8, hash: &Secret) -> Result<()> {
    put_u64(&mut w.w, seq)
        .and_then(|()| w.w.write_all(&[kind]))
        .and_then(|()| put_str(&mut w.w, hash.expose()))
        .map_err(|e| w.err(e))?;
    w.records += 1;
    Ok(())
}

fn flush_matches(matches: &mut Vec<(u64, Secret)>, mut run: TempWriter) -> Result<()> {
    matches.sort_unstable_by_key(|(seq, _)| *seq);
    for (seq, hash) in matches.drain(..) {
        write_match(&mut run, seq, BY_EMAIL, &hash)?;
    }
    run.finish()?;
    Ok(())
}

const USER_OK: u8 = 0;
const USER_ERR: u8 = 1;

fn write_user(w: &mut TempWriter, rec: &InputRecord) -> Result<()> {
    let res = (|| {
        put_u64(&mut w.w, rec.index)?;
        match &rec.record {
            Ok(user) => {
                w.w.write_all(&[USER_OK])?;
                let json = serde_json::to_vec(user).map_err(io::Error::other)?;
                let len = u32::try_from(json.len()).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "record larger than 4 GiB")
                })?;
                w.w.write_all(&len.to_le_bytes())?;
                w.w.write_all(&json)
            }
            Err(f) => {
                w.w.write_all(&[USER_ERR])?;
                put_str(&mut w.w, &f.code)?;
                put_str(&mut w.w, &f.message)
            }
        }
    })();
    res.map_err(|e| w.err(e))?;
    w.records += 1;
    Ok(())
}

/// The output side of a spilled join: the user spill read in order, with the match
/// runs merged by sequence number.
pub(super) struct SpillOutput {
    users: BufReader<File>,
    users_path: PathBuf,
    merge: RunMerge,
    seq: u64,
    buf: Vec<u8>,
    // Declared last: the files are closed before the directory is removed.
    _dir: tempfile::TempDir,
}

impl SpillOutput {
    pub(super) fn next(&mut self) -> Result<Option<InputRecord>> {
        let rd = |e| Error::io("read", &self.users_path, e);
        let Some(index) = get_u64_or_eof(&mut self.users).map_err(rd)? else {
            return Ok(None);
        };
        let seq = self.seq;
        self.seq += 1;
        let record = match get_u8(&mut self.users).map_err(rd)? {
            USER_OK => {
                let len = get_u32(&mut self.users).map_err(rd)? as usize;
                self.buf.resize(len, 0);
                self.users.read_exact(&mut self.buf).map_err(rd)?;
                let mut user: UserRecord = serde_json::from_slice(&self.buf)
                    .map_err(|e| rd(io::Error::new(io::ErrorKind::InvalidData, e)))?;
                while let Some((mseq, _, hash)) = self.merge.pop_if_le(seq)? {
                    if mseq == seq {
                        user.password = Some(PasswordHash::bcrypt(hash));
                    }
                }
                Ok(user)
            }
            USER_ERR => {
                let code = get_str(&mut self.users).map_err(rd)?;
                let message = get_str(&mut self.users).map_err(rd)?;
                Err(RecordFailure { code, message })
            }
            _ => {
                return Err(rd(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad record tag",
                )));
            }
        };
        Ok(Some(InputRecord { index, record }))
    }
}

/// A k-way merge of match runs (each sorted by sequence number).
struct RunMerge {
    readers: Vec<(PathBuf, BufReader<File>)>,
    heads: Vec<Option<(u8, Secret)>>,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
}

impl RunMerge {
    fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut m = Self {
            readers: Vec::with_capacity(paths.len()),
            heads: Vec::with_capacity(paths.len()),
            heap: BinaryHeap::with_capacity(paths.len()),
        };
        for (i, p) in paths.iter().enumerate() {
            m.readers.push((p.clone(), open_reader(p, PART_BUF)?));
            m.heads.push(None);
            m.advance(i)?;
        }
        Ok(m)
    }

    fn advance(&mut self, i: usize) -> Result<()> {
        let (path, r) = &mut self.readers[i];
        let rd = |e| Error::io("read", &*path, e);
        if let Some(seq) = get_u64_or_eof(r).map_err(rd)? {
            let kind = get_u8(r).map_err(rd)?;
            let hash = Secret::from(get_str(r).map_err(rd)?);
            self.heads[i] = Some((kind, hash));
            self.heap.push(Reverse((seq, i)));
        }
        Ok(())
    }

    /// The smallest match, if any.
    fn pop(&mut self) -> Result<Option<(u64, u8, Secret)>> {
        self.pop_if_le(u64::MAX)
    }

    /// The smallest match if its sequence number is at most `seq`.
    fn pop_if_le(&mut self, seq: u64) -> Result<Option<(u64, u8, Secret)>> {
        match self.heap.peek() {
            Some(Reverse((s, _))) if *s <= seq => {}
            _ => return Ok(None),
        }
        let Some(Reverse((s, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let head = self.heads[i].take();
        self.advance(i)?;
        Ok(head.map(|(kind, hash)| (s, kind, hash)))
    }
}
