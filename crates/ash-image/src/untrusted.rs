//! The one way a file named from outside is read: image folders, `image`
//! paths in records, `encode`'s arguments and lists, the server's image
//! roots, objects kept from a PACS.
//!
//! How it works: what a path names is looked at first (`stat`), so a
//! device is never opened; then it is opened without blocking (`O_NONBLOCK`,
//! so a FIFO swapped in meanwhile cannot hang the open) and without
//! becoming a controlling terminal, and the open file itself is checked
//! again: only a regular file is read; a FIFO, a device (`/dev/zero`), a
//! socket or a folder is refused with what it is. A symbolic link is
//! followed to what it names, and that is what is checked. Reads go through a reader capped
//! at the limit, whatever the file's size claims (files that grow, or
//! report 0 bytes), so no file can make a read unbounded.
//!
//! [`walk`] lists a folder tree that may hold links: links are followed,
//! each folder is entered once and each file listed once (by device and
//! inode), so a link loop ends and a photograph reached by two paths is
//! one photograph.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a file from outside was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Opening or reading failed (missing, no permission, I/O error).
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// Not a regular file: a FIFO, a device, a socket, a folder.
    #[error("not a regular file but {0}; only regular files are read")]
    NotRegular(&'static str),
    /// Longer than the limit (the limit's bytes were read at most).
    #[error("file is over the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
}

/// Opens `path` for reading if it is (or links to) a regular file.
///
/// ```
/// use ash_image::untrusted::{open_regular, FileError};
/// assert!(matches!(open_regular("/dev/zero".as_ref()), Err(FileError::NotRegular(_))));
/// assert!(matches!(open_regular("/".as_ref()), Err(FileError::NotRegular("a folder"))));
/// ```
pub fn open_regular(path: &Path) -> Result<File, FileError> {
    // What the path names is looked at before it is opened: opening some
    // devices has effects of its own. The open file is checked again, in
    // case the path changed in between.
    let named = std::fs::metadata(path)?.file_type();
    if !named.is_file() {
        return Err(FileError::NotRegular(describe(named)));
    }
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        Ok(file)
    } else {
        Err(FileError::NotRegular(describe(kind)))
    }
}

/// The whole of a regular file of at most `limit` bytes.
///
/// ```
/// use ash_image::untrusted::{read_capped, FileError};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("a.png");
/// std::fs::write(&path, b"twelve bytes").unwrap();
/// assert_eq!(read_capped(&path, 12).unwrap(), b"twelve bytes");
/// assert!(matches!(read_capped(&path, 11), Err(FileError::TooLarge { limit: 11 })));
/// ```
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let file = open_regular(path)?;
    let claimed = file.metadata()?.len();
    if claimed > limit {
        return Err(FileError::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(claimed as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge { limit });
    }
    Ok(bytes)
}

/// The first `n` bytes of a regular file (fewer if it is shorter): enough
/// to tell its format.
pub fn read_head(path: &Path, n: usize) -> Result<Vec<u8>, FileError> {
    let mut head = Vec::with_capacity(n);
    open_regular(path)?.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// What [`walk`] found below a folder.
#[derive(Debug, Default)]
pub struct Walked {
    /// Every entry that is not a folder, sorted: regular files, and also
    /// FIFOs, devices and broken links, so the caller can report them
    /// (reading them through [`open_regular`] refuses them).
    pub files: Vec<PathBuf>,
    /// Folders below the root that could not be read, and why.
    pub unreadable: Vec<(PathBuf, std::io::Error)>,
}

/// Every entry below `dir` that is not a folder (hidden names left out).
/// Links are followed; each folder is entered once and each file listed
/// once, by device and inode, so the walk ends whatever the links do. Only
/// an unreadable `dir` itself is an error; a folder below it that cannot
/// be read is reported in [`Walked::unreadable`] and the walk goes on.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::create_dir(dir.path().join("sub")).unwrap();
/// std::fs::write(dir.path().join("sub/a.png"), b"x").unwrap();
/// std::os::unix::fs::symlink("..", dir.path().join("sub/loop")).unwrap();
/// let walked = ash_image::untrusted::walk(dir.path()).unwrap();
/// assert_eq!(walked.files, vec![dir.path().join("sub/a.png")]);
/// ```
pub fn walk(dir: &Path) -> std::io::Result<Walked> {
    let mut seen = HashSet::new();
    seen.insert(identity(&std::fs::metadata(dir)?));
    let mut walked = Walked::default();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        let listed = std::fs::read_dir(&folder)
            .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect());
        let mut entries: Vec<PathBuf> = match listed {
            Ok(entries) => entries,
            Err(e) if folder == dir => return Err(e),
            Err(e) => {
                walked.unreadable.push((folder, e));
                continue;
            }
        };
        entries.sort();
        // Files in name order, so the first name of a file reached twice
        // is the one listed; folders reversed onto the stack, so they too
        // are walked in name order.
        let mut folders = Vec::new();
        for path in entries {
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(meta) if !seen.insert(identity(&meta)) => {}
                Ok(meta) if meta.is_dir() => folders.push(path),
                _ => walked.files.push(path),
            }
        }
        stack.extend(folders.into_iter().rev());
    }
    walked.files.sort();
    walked.unreadable.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(walked)
}

/// A file's identity: device and inode where there are such.
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let _ = meta;
        (0, NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// What a file that is not regular is, in words.
fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.png");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo (coreutils) is needed");
        assert!(matches!(
            read_capped(&fifo, 100),
            Err(FileError::NotRegular("a FIFO (named pipe)"))
        ));
    }

    #[test]
    fn a_link_to_a_device_is_refused_whatever_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.png");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_capped(&link, 100),
            Err(FileError::NotRegular("a character device"))
        ));
    }

    #[test]
    fn two_links_to_the_parent_walk_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("p.png"), b"x").unwrap();
        std::os::unix::fs::symlink("..", sub.join("l1")).unwrap();
        std::os::unix::fs::symlink("..", sub.join("l2")).unwrap();
        std::os::unix::fs::symlink("p.png", sub.join("q.png")).unwrap();
        std::os::unix::fs::symlink("nowhere", sub.join("broken.png")).unwrap();
        let walked = walk(dir.path()).unwrap();
        assert_eq!(
            walked.files,
            vec![sub.join("broken.png"), sub.join("p.png")]
        );
        assert!(walked.unreadable.is_empty());
    }
}
