//! The run log: `metrics.jsonl`, one JSON object per logged step of a training run
//! (losses, scores, MS-SWD), append-only.
//!
//! A line looks like `{"step":1200,"time":1718000000.25,"loss_D":0.61,"loss_G":1.93}`: `step`
//! (u64), `time` (seconds since the Unix epoch) and one number per named value. JSON has no NaN
//! or infinity, so those are written as the strings `"NaN"`, `"inf"` and `"-inf"`.
//!
//! Crash safety: each record is written with a single `write` of the whole line including its
//! newline to a file opened in append mode, with no user-space buffer, so a process crash loses
//! at most the line being written. A record counts once its newline is on disk: the reader
//! ignores an unterminated last fragment, and [`RunLogWriter::open`] cuts such a fragment off
//! before appending, so the next record starts on a fresh line. [`RunLogWriter::resume`] also
//! drops records newer than the checkpoint a run resumes from, so the curves do not double back.
//! Durability against power loss needs [`RunLogWriter::sync`].

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::plot::Series;
use crate::persist::atomic;

#[derive(Debug, thiserror::Error)]
pub enum RunLogError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("metric name '{0}' is reserved (the record's own fields are 'step' and 'time')")]
    ReservedName(String),
    #[error("metric '{0}' appears twice in one record")]
    DuplicateName(String),
    #[error("record time {0} is not finite")]
    BadTime(f64),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RunLogError + '_ {
    move |source| RunLogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One logged step.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub step: u64,
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub values: BTreeMap<String, f64>,
}

fn json_value(v: f64) -> String {
    if v.is_finite() {
        // serde_json prints the shortest representation that parses back to the same f64.
        serde_json::to_string(&v).expect("finite f64 serializes")
    } else if v.is_nan() {
        "\"NaN\"".into()
    } else if v > 0.0 {
        "\"inf\"".into()
    } else {
        "\"-inf\"".into()
    }
}

/// The JSON line (with its newline) for one record.
fn format_line(step: u64, time: f64, values: &[(&str, f64)]) -> Result<String, RunLogError> {
    if !time.is_finite() {
        return Err(RunLogError::BadTime(time));
    }
    let mut line = format!("{{\"step\":{step},\"time\":{}", json_value(time));
    for (k, &(name, v)) in values.iter().enumerate() {
        if name == "step" || name == "time" {
            return Err(RunLogError::ReservedName(name.to_string()));
        }
        if values[..k].iter().any(|(n, _)| *n == name) {
            return Err(RunLogError::DuplicateName(name.to_string()));
        }
        let key = serde_json::to_string(name).expect("strings serialize");
        line.push_str(&format!(",{key}:{}", json_value(v)));
    }
    line.push_str("}\n");
    Ok(line)
}

/// Parses one line; `None` if it is not a record (malformed, or missing `step` or `time`).
/// Fields that are neither numbers nor the non-finite strings are ignored.
pub fn parse_line(line: &str) -> Option<Record> {
    let obj: serde_json::Map<String, Value> = serde_json::from_str(line).ok()?;
    let step = obj.get("step")?.as_u64()?;
    let time = obj.get("time")?.as_f64()?;
    let values = obj
        .iter()
        .filter(|(k, _)| *k != "step" && *k != "time")
        .filter_map(|(k, v)| {
            let x = match v {
                Value::Number(n) => n.as_f64()?,
                Value::String(s) => match s.as_str() {
                    "NaN" => f64::NAN,
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    _ => return None,
                },
                Value::Null => f64::NAN,
                _ => return None,
            };
            Some((k.clone(), x))
        })
        .collect();
    Some(Record { step, time, values })
}

/// Appends records to a metrics file.
#[derive(Debug)]
pub struct RunLogWriter {
    file: File,
    path: PathBuf,
}

/// Length of the complete-lines prefix of `bytes` (up to and including the last newline).
fn complete_len(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

impl RunLogWriter {
    /// Starts an empty log at `path`, replacing any existing file.
    pub fn create(path: &Path) -> Result<Self, RunLogError> {
        File::create(path).map_err(io_err(path))?;
        Self::open(path)
    }

    /// Opens `path` for appending (creating it if missing), first cutting off a torn last line.
    pub fn open(path: &Path) -> Result<Self, RunLogError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(io_err(path))?;
        let bytes = fs::read(path).map_err(io_err(path))?;
        let keep = complete_len(&bytes);
        if keep < bytes.len() {
            file.set_len(keep as u64).map_err(io_err(path))?;
        }
        Ok(RunLogWriter {
            file,
            path: path.to_path_buf(),
        })
    }

    /// For a run resuming from a checkpoint at `step`: drops the records with a larger step (and
    /// a torn last line), replacing the file atomically, then opens it for appending. Lines that
    /// are not records are kept as they are.
    pub fn resume(path: &Path, step: u64) -> Result<Self, RunLogError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Self::open(path),
            Err(e) => return Err(io_err(path)(e)),
        };
        let complete = &bytes[..complete_len(&bytes)];
        let mut kept = Vec::with_capacity(complete.len());
        for line in complete.split_inclusive(|&b| b == b'\n') {
            let later = std::str::from_utf8(line)
                .ok()
                .and_then(parse_line)
                .is_some_and(|r| r.step > step);
            if !later {
                kept.extend_from_slice(line);
            }
        }
        if kept.len() != bytes.len() {
            atomic::replace_file(path, |tmp| fs::write(tmp, &kept)).map_err(io_err(path))?;
        }
        Self::open(path)
    }

    /// Logs `values` for `step`, stamped with the current time.
    pub fn log(&mut self, step: u64, values: &[(&str, f64)]) -> Result<(), RunLogError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.log_at(step, now, values)
    }

    /// Logs `values` for `step` with an explicit time (seconds since the Unix epoch).
    pub fn log_at(
        &mut self,
        step: u64,
        time: f64,
        values: &[(&str, f64)],
    ) -> Result<(), RunLogError> {
        let line = format_line(step, time, values)?;
        // One write of the whole line: `File` has no buffer, and O_APPEND places it at the end.
        self.file
            .write_all(line.as_bytes())
            .map_err(io_err(&self.path))
    }

    /// Forces the log to stable storage.
    pub fn sync(&self) -> Result<(), RunLogError> {
        self.file.sync_data().map_err(io_err(&self.path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The records of a metrics file, plus what could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunLog {
    pub records: Vec<Record>,
    /// 1-based numbers of complete lines that are not records (blank lines excepted).
    pub bad_lines: Vec<usize>,
    /// Whether an unterminated last fragment (a torn write, or one in progress) was ignored.
    pub torn_tail: bool,
}

/// Reads a metrics file. A missing file is an error; an empty one has no records.
pub fn read(path: &Path) -> Result<RunLog, RunLogError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let keep = complete_len(&bytes);
    let mut log = RunLog {
        torn_tail: keep < bytes.len(),
        ..Default::default()
    };
    for (i, line) in bytes[..keep].split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match std::str::from_utf8(line).ok().and_then(parse_line) {
            Some(r) => log.records.push(r),
            None => log.bad_lines.push(i + 1),
        }
    }
    Ok(log)
}

/// One series per metric name (sorted by name), x = step, in step order. Where a step was
/// logged more than once (a run resumed without [`RunLogWriter::resume`]), the later record
/// wins.
pub fn series(records: &[Record]) -> Vec<Series> {
    let mut by_name: BTreeMap<&str, BTreeMap<u64, f64>> = BTreeMap::new();
    for r in records {
        for (name, &v) in &r.values {
            by_name.entry(name).or_default().insert(r.step, v);
        }
    }
    by_name
        .into_iter()
        .map(|(name, pts)| Series::new(name, pts.into_iter().map(|(s, v)| (s as f64, v)).collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::atomic::test_dir::names_in;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut w = RunLogWriter::create(&path).unwrap();
        w.log_at(0, 1000.5, &[("loss_G", 0.1 + 0.2), ("loss_D", -1e-300)])
            .unwrap();
        w.log_at(
            10,
            1001.25,
            &[
                ("loss_G", f64::NAN),
                ("loss_D", f64::INFINITY),
                ("r1", f64::NEG_INFINITY),
                ("we\"ird name", 3.0),
            ],
        )
        .unwrap();
        w.log(20, &[("loss_G", 1.5)]).unwrap();
        w.sync().unwrap();
        drop(w);

        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"step\":0,\"time\":1000.5,\"loss_G\":0.30000000000000004,"));
        let log = read(&path).unwrap();
        assert!(log.bad_lines.is_empty() && !log.torn_tail);
        let r = &log.records;
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].step, r[0].time), (0, 1000.5));
        assert_eq!(r[0].values["loss_G"], 0.1 + 0.2);
        assert_eq!(r[0].values["loss_D"], -1e-300);
        assert!(r[1].values["loss_G"].is_nan());
        assert_eq!(r[1].values["loss_D"], f64::INFINITY);
        assert_eq!(r[1].values["r1"], f64::NEG_INFINITY);
        assert_eq!(r[1].values["we\"ird name"], 3.0);
        assert!(r[2].time > 1.6e9);

        let s = series(r);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["loss_D", "loss_G", "r1", "we\"ird name"]);
        assert_eq!(s[1].points.len(), 3);
        assert_eq!(s[1].points[2], (20.0, 1.5));
    }

    #[test]
    fn rejects_reserved_and_duplicate_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RunLogWriter::create(&dir.path().join("m.jsonl")).unwrap();
        assert!(matches!(
            w.log(1, &[("step", 1.0)]),
            Err(RunLogError::ReservedName(_))
        ));
        assert!(matches!(
            w.log(1, &[("a", 1.0), ("a", 2.0)]),
            Err(RunLogError::DuplicateName(_))
        ));
        assert!(matches!(
            w.log_at(1, f64::NAN, &[]),
            Err(RunLogError::BadTime(_))
        ));
        assert!(fs::read(w.path()).unwrap().is_empty());
    }

    #[test]
    fn torn_last_line_is_ignored_and_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut w = RunLogWriter::create(&path).unwrap();
        w.log_at(1, 1.0, &[("a", 1.0)]).unwrap();
        w.log_at(2, 2.0, &[("a", 2.0)]).unwrap();
        drop(w);
        // A crash in the middle of the third record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"step\":3,\"time\":3.0,\"a\":3.").unwrap();
        drop(f);

        let log = read(&path).unwrap();
        assert_eq!(log.records.len(), 2);
        assert!(log.torn_tail && log.bad_lines.is_empty());

        // Reopening cuts the fragment, so the next record is on its own line.
        let mut w = RunLogWriter::open(&path).unwrap();
        w.log_at(3, 3.5, &[("a", 3.5)]).unwrap();
        drop(w);
        let log = read(&path).unwrap();
        assert!(!log.torn_tail && log.bad_lines.is_empty());
        let steps: Vec<u64> = log.records.iter().map(|r| r.step).collect();
        assert_eq!(steps, [1, 2, 3]);
        assert_eq!(log.records[2].values["a"], 3.5);
    }

    #[test]
    fn bad_middle_lines_are_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        fs::write(
            &path,
            "{\"step\":1,\"time\":1,\"a\":1}\n\ngarbage\n{\"time\":2}\n{\"step\":3,\"time\":3,\"a\":3,\"note\":\"x\"}\n",
        )
        .unwrap();
        let log = read(&path).unwrap();
        assert_eq!(log.bad_lines, [3, 4]);
        assert_eq!(log.records.len(), 2);
        // Non-numeric fields are ignored.
        assert_eq!(log.records[1].values.len(), 1);
        assert!(read(&dir.path().join("missing.jsonl")).is_err());
    }

    #[test]
    fn resume_drops_later_steps_and_later_records_win_in_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut w = RunLogWriter::create(&path).unwrap();
        for step in [0, 10, 20, 30] {
            w.log_at(step, step as f64, &[("a", step as f64)]).unwrap();
        }
        drop(w);
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"step\":40")
            .unwrap();
        let mut w = RunLogWriter::resume(&path, 20).unwrap();
        w.log_at(30, 99.0, &[("a", -30.0)]).unwrap();
        drop(w);
        assert_eq!(names_in(dir.path()), ["metrics.jsonl"]);
        let log = read(&path).unwrap();
        let steps: Vec<u64> = log.records.iter().map(|r| r.step).collect();
        assert_eq!(steps, [0, 10, 20, 30]);
        assert_eq!(log.records[3].values["a"], -30.0);

        // Without resume, a duplicated step keeps the later value.
        let dup = vec![
            Record {
                step: 5,
                time: 0.0,
                values: [("a".to_string(), 1.0)].into(),
            },
            Record {
                step: 5,
                time: 1.0,
                values: [("a".to_string(), 2.0)].into(),
            },
        ];
        assert_eq!(series(&dup)[0].points, [(5.0, 2.0)]);
        // Resuming a missing file just creates it.
        let other = dir.path().join("new.jsonl");
        RunLogWriter::resume(&other, 5).unwrap();
        assert!(other.exists());
    }
}
