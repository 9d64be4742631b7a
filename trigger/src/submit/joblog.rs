//! The optional job log, a CSV like Taskotron's `jobs.csv`: one line per job the master
//! accepted. Columns: `time,uuid,taskname,item,item_type,arch,message_type,msg_id,git_repo,git_branch`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Job;

#[derive(Clone)]
pub struct JobLog {
    path: PathBuf,
}

impl JobLog {
    pub fn new(path: &Path) -> JobLog {
        JobLog {
            path: path.to_path_buf(),
        }
    }

    pub fn append(&self, job: &Job) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let fields = [
            format!("{now:.3}"),
            job.uuid.clone(),
            job.taskname.clone(),
            job.item.clone(),
            job.item_type.clone(),
            job.arch.clone(),
            job.message_type.clone(),
            job.msg_id.clone(),
            job.git_repo.clone().unwrap_or_default(),
            job.git_branch.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        writeln!(f, "{}", line.join(","))
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
