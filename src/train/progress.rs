//! What the console says about a run in progress: images per second over the last minute,
//! thousands of images seen (kimg, the unit StyleGAN schedules count in) and the time left.
//!
//! With `--no-progress` a run prints one line per sample interval (and one at its last step):
//!
//! ```text
//! step 500/1500: D 1.3862  G 0.6931  18.2 img/s  8.0 kimg  ETA 14m39s
//! ```
//!
//! The progress bar shows the same fields after its step counter. The losses are the last
//! step's; kimg counts every image the networks have seen since step 0 (batch times
//! accumulation per step, resumed runs included); img/s and the time left come from
//! [`Throughput`]. A field that cannot be estimated yet reads `?`. Durations are
//! [`format_duration`]'s: `12s`, `3m05s`, `1h02m`, `2d03h`.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// How far back [`Throughput`] measures.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Most step marks kept: bounds memory for very fast steps, where fewer than a minute's
/// worth of steps is still plenty to measure over.
const MAX_MARKS: usize = 4096;

/// Images per second over the most recent [`RATE_WINDOW`] of steps.
///
/// The rate is measured from step completions, so a run's first step (which records and
/// compiles the step programs, often the slowest thing a run does) is counted only until a
/// second step has finished; after that the window starts at the first step's end.
pub struct Throughput {
    images_per_step: u64,
    window: Duration,
    /// (steps done, when), oldest first. The oldest is the newest mark at least `window`
    /// old, so that the rate spans the whole window once the run is that long.
    marks: VecDeque<(u64, Instant)>,
    /// Whether the oldest mark is the start of the run's first step, not a completion.
    from_start: bool,
}

impl Throughput {
    /// A rate for a run at `steps_done` about to start its next step at `now`.
    pub fn new(images_per_step: u64, steps_done: u64, now: Instant) -> Self {
        Self::with_window(images_per_step, steps_done, now, RATE_WINDOW)
    }

    pub fn with_window(
        images_per_step: u64,
        steps_done: u64,
        now: Instant,
        window: Duration,
    ) -> Self {
        Throughput {
            images_per_step,
            window,
            marks: VecDeque::from([(steps_done, now)]),
            from_start: true,
        }
    }

    /// Notes that `steps_done` steps were done at `now` (later than every earlier mark).
    pub fn record(&mut self, steps_done: u64, now: Instant) {
        self.marks.push_back((steps_done, now));
        if self.from_start && self.marks.len() > 2 {
            self.marks.pop_front();
            self.from_start = false;
        }
        while self.marks.len() > 2 && now.duration_since(self.marks[1].1) >= self.window {
            self.marks.pop_front();
        }
        while self.marks.len() > MAX_MARKS {
            self.marks.pop_front();
        }
    }

    /// Images per second between the oldest and the newest mark; `None` before any step.
    pub fn images_per_second(&self) -> Option<f64> {
        let (&(s0, t0), &(s1, t1)) = (self.marks.front()?, self.marks.back()?);
        let secs = t1.duration_since(t0).as_secs_f64();
        (s1 > s0 && secs > 0.0).then(|| (s1 - s0) as f64 * self.images_per_step as f64 / secs)
    }

    /// The time `remaining_steps` more steps take at the current rate.
    pub fn time_left(&self, remaining_steps: u64) -> Option<Duration> {
        if remaining_steps == 0 {
            return Some(Duration::ZERO);
        }
        let images = remaining_steps as f64 * self.images_per_step as f64;
        Duration::try_from_secs_f64(images / self.images_per_second()?).ok()
    }
}

/// The fields after the step counter, for the log line and the progress bar alike.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub d_loss: f32,
    pub g_loss: f32,
    pub images_per_second: Option<f64>,
    /// Images seen since step 0.
    pub images: u64,
    pub time_left: Option<Duration>,
}

impl Status {
    /// The status after `done` of `total` steps.
    pub fn new(rate: &Throughput, done: u64, total: u64, d_loss: f32, g_loss: f32) -> Self {
        Status {
            d_loss,
            g_loss,
            images_per_second: rate.images_per_second(),
            images: done.saturating_mul(rate.images_per_step),
            time_left: rate.time_left(total.saturating_sub(done)),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "D {:.4}  G {:.4}  ", self.d_loss, self.g_loss)?;
        match self.images_per_second {
            Some(rate) => write!(f, "{rate:.1} img/s")?,
            None => write!(f, "? img/s")?,
        }
        write!(f, "  {:.1} kimg  ETA ", self.images as f64 / 1000.0)?;
        match self.time_left {
            Some(left) => write!(f, "{}", format_duration(left)),
            None => write!(f, "?"),
        }
    }
}

/// A duration to the second, in its two largest units: `12s`, `3m05s`, `1h02m`, `2d03h`.
pub fn format_duration(d: Duration) -> String {
    // Rounded to the nearest second first, so that 59.6 s reads `1m00s`, not `59s`.
    let secs = d
        .as_secs()
        .saturating_add(u64::from(d.subsec_millis() >= 500));
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if days > 0 {
        format!("{days}d{hours:02}h")
    } else if hours > 0 {
        format!("{hours}h{minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m{seconds:02}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn durations_read_in_their_two_largest_units() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(secs(12.0)), "12s");
        assert_eq!(format_duration(secs(12.4)), "12s");
        assert_eq!(format_duration(secs(59.6)), "1m00s");
        assert_eq!(format_duration(secs(185.0)), "3m05s");
        assert_eq!(format_duration(secs(3600.0)), "1h00m");
        assert_eq!(format_duration(secs(3725.0)), "1h02m");
        assert_eq!(format_duration(secs(86_399.0)), "23h59m");
        assert_eq!(
            format_duration(secs(2.0 * 86_400.0 + 3.0 * 3600.0 + 59.0)),
            "2d03h"
        );
        assert_eq!(
            format_duration(Duration::MAX),
            format!("{}d07h", u64::MAX / 86_400)
        );
    }

    #[test]
    fn the_first_step_counts_only_until_a_second_is_done() {
        let t0 = Instant::now();
        // 8 images a step; the first step takes 30 s (recording the programs), later ones 2 s.
        let mut rate = Throughput::new(8, 0, t0);
        assert_eq!(rate.images_per_second(), None);
        rate.record(1, t0 + secs(30.0));
        assert_eq!(rate.images_per_second(), Some(8.0 / 30.0));
        rate.record(2, t0 + secs(32.0));
        assert_eq!(rate.images_per_second(), Some(4.0));
        rate.record(3, t0 + secs(34.0));
        assert_eq!(rate.images_per_second(), Some(4.0));
        assert_eq!(rate.time_left(10), Some(secs(20.0)));
        assert_eq!(rate.time_left(0), Some(Duration::ZERO));
    }

    #[test]
    fn the_rate_follows_the_last_minute() {
        let t0 = Instant::now();
        let mut rate = Throughput::new(10, 100, t0);
        // Two minutes at 1 step/s, then a minute at 4 steps/s.
        let mut t = 0.0;
        let mut step = 100;
        for _ in 0..120 {
            t += 1.0;
            step += 1;
            rate.record(step, t0 + secs(t));
        }
        assert!((rate.images_per_second().unwrap() - 10.0).abs() < 1e-9);
        for _ in 0..240 {
            t += 0.25;
            step += 1;
            rate.record(step, t0 + secs(t));
        }
        assert!((rate.images_per_second().unwrap() - 40.0).abs() < 1e-9);
        // Halfway through a slower stretch the window holds both: 30 s at 4 steps/s and 30 s
        // at 1 step/s, 150 steps in 60 s.
        for _ in 0..30 {
            t += 1.0;
            step += 1;
            rate.record(step, t0 + secs(t));
        }
        assert!((rate.images_per_second().unwrap() - 25.0).abs() < 1e-9);
        assert_eq!(rate.time_left(5), Some(secs(2.0)));
    }

    #[test]
    fn marks_are_bounded_for_very_fast_steps() {
        let t0 = Instant::now();
        let mut rate = Throughput::new(1, 0, t0);
        for step in 1..=3 * MAX_MARKS as u64 {
            rate.record(step, t0 + Duration::from_micros(step));
        }
        assert_eq!(rate.marks.len(), MAX_MARKS);
        assert!((rate.images_per_second().unwrap() - 1e6).abs() < 1e-3);
    }

    #[test]
    fn the_status_reads_as_documented() {
        let t0 = Instant::now();
        let mut rate = Throughput::new(16, 0, t0);
        rate.record(1, t0 + secs(5.0));
        rate.record(500, t0 + secs(5.0 + 499.0 * 16.0 / 18.2));
        let status = Status::new(&rate, 500, 1500, 1.38624, 0.612_34);
        assert_eq!(
            status.to_string(),
            "D 1.3862  G 0.6123  18.2 img/s  8.0 kimg  ETA 14m39s"
        );
        let fresh = Throughput::new(16, 0, t0);
        let status = Status::new(&fresh, 0, 1500, 0.0, 0.0);
        assert_eq!(
            status.to_string(),
            "D 0.0000  G 0.0000  ? img/s  0.0 kimg  ETA ?"
        );
    }
}
