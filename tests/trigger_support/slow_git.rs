//! A dist-git stand-in whose server hangs for one repository: a `git` wrapper put first on
//! the trigger's `PATH` runs the real git, except that any git command naming the slow
//! repository first waits on a gate (a file the test holds an exclusive `flock` on). It notes
//! each wait (its pid) in a file, so a test can wait until a discover is stuck, and it blocks
//! without polling until the test opens the gate.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::git;

/// A lock file held exclusively by the test until [`Gate::open`].
pub struct Gate {
    pub path: PathBuf,
    file: Option<File>,
}

impl Gate {
    pub fn closed(path: &Path) -> Gate {
        let file = File::create(path).unwrap();
        // SAFETY: flock(2) on a file we own; the fd is close-on-exec, so children do not hold it.
        assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
        Gate {
            path: path.to_path_buf(),
            file: Some(file),
        }
    }

    /// Lets every waiting (and later) git through.
    pub fn open(&mut self) {
        if let Some(f) = self.file.take() {
            // SAFETY: as above.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

/// The wrapper and its bookkeeping.
pub struct SlowGit {
    /// Directory with the `git` wrapper, to put first on `PATH`.
    pub bin_dir: PathBuf,
    /// One line (the waiting shell's pid) per git command that waited at the gate.
    pub waits: PathBuf,
    pub gate: Gate,
}

impl SlowGit {
    /// Git commands whose arguments contain `mark` wait at the gate.
    pub fn new(dir: &Path, mark: &str) -> SlowGit {
        let out = Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap();
        let real = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(!real.is_empty(), "git not found");
        let bin_dir = dir.join("slow-git-bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let waits = dir.join("slow-git-waits");
        std::fs::write(&waits, "").unwrap();
        let gate = Gate::closed(&dir.join("slow-git-gate"));
        let script = format!(
            "#!/bin/sh\n\
             case \"$*\" in\n  *{mark}*)\n    echo $$ >> '{waits}'\n    flock -s '{gate}' true ;;\n\
             esac\n\
             exec '{real}' \"$@\"\n",
            waits = waits.display(),
            gate = gate.path.display(),
        );
        let git = bin_dir.join("git");
        std::fs::write(&git, script).unwrap();
        std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).unwrap();
        SlowGit {
            bin_dir,
            waits,
            gate,
        }
    }

    /// `PATH` for the trigger: the wrapper first.
    pub fn path_env(&self) -> (&'static str, String) {
        (
            "PATH",
            format!(
                "{}:{}",
                self.bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
    }

    /// Pids of the git commands that waited at the gate so far.
    pub fn waits(&self) -> Vec<i32> {
        std::fs::read_to_string(&self.waits)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

/// A git repository at `dir/name` (branch master) with a `runtask.yml` at its root.
pub fn task_repo(dir: &Path, name: &str) -> PathBuf {
    let repo = dir.join(name);
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("runtask.yml"), "name: x\n").unwrap();
    git(&repo, &["init", "-q", "-b", "master"]);
    git(&repo, &["add", "runtask.yml"]);
    git(&repo, &["commit", "-q", "-m", "formula"]);
    repo
}

/// True while a process with this pid exists.
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}
