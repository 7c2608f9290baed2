//! Loss curves as PNG, drawn directly into an `RgbImage` (no plotting crate).
//!
//! Each [`Series`] is a list of (x, y) points (x is normally the training step), drawn as an
//! anti-aliased polyline in its own colour, with axes, tick marks, grid lines, numeric tick
//! labels, an optional title and axis labels, and a legend of colour swatches and names placed in
//! the plot corner that hides the least data. Text uses the crate's own 5x7 bitmap font.
//!
//! Robustness: points with a non-finite x or y (or y <= 0 on a log axis) are skipped, and the line
//! joins their neighbours (so a metric logged as NaN between its real values still draws as one
//! curve); a series with a single drawable point is drawn as a dot;
//! a zero-width range is widened; with no drawable point at all the frame is drawn with "no data".
//!
//! Outliers: [`PlotOptions::clip_percentile`] = `Some(p)` fits the y axis to the p-th..(100-p)-th
//! percentile of all drawn values (lines leaving that range are cut at the frame), so early
//! spikes do not flatten the rest of the curve; [`YScale::Log10`] plots log10(y).
//!
//! Line drawing: for each column (or row, for steep segments) the line covers an interval of the
//! minor axis of length `width * sqrt(1 + slope^2)` (the vertical extent of a band of that
//! perpendicular width); each pixel's coverage is its overlap with that interval. Coverage is
//! accumulated per series as a maximum, so joints and overlapping segments do not darken, then
//! blended over the image once.

use std::io;
use std::path::{Path, PathBuf};

use image::{ImageFormat, Rgb, RgbImage};

use super::font::{draw_text, text_width, GLYPH_H};
use crate::persist::atomic;

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YScale {
    Linear,
    /// log10(y); values <= 0 are skipped.
    Log10,
}

#[derive(Clone, Debug)]
pub struct PlotOptions {
    pub width: u32,
    pub height: u32,
    pub title: Option<String>,
    pub x_label: Option<String>,
    pub y_label: Option<String>,
    pub y_scale: YScale,
    /// Fit the y axis to the p-th..(100-p)-th percentile of the values (0 < p < 50).
    pub clip_percentile: Option<f64>,
    /// Line width in pixels.
    pub line_width: f64,
    /// Font pixel size: each font pixel is `font_scale` x `font_scale` image pixels.
    pub font_scale: u32,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            width: 960,
            height: 540,
            title: None,
            x_label: Some("step".into()),
            y_label: None,
            y_scale: YScale::Linear,
            clip_percentile: None,
            line_width: 1.5,
            font_scale: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Series colours, cycled: ten hues that stay distinct on white.
pub const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const GRID: Rgb<u8> = Rgb([228, 228, 228]);
const FOREGROUND: Rgb<u8> = Rgb([0, 0, 0]);
const LEGEND_BORDER: Rgb<u8> = Rgb([150, 150, 150]);
const TICK_LEN: i64 = 5;
const PAD: i64 = 8;

/// Colour of series `i`.
pub fn colour(i: usize) -> [u8; 3] {
    PALETTE[i % PALETTE.len()]
}

/// y as plotted: log10 for a log axis; `None` where it cannot be drawn.
fn transform(y: f64, scale: YScale) -> Option<f64> {
    let t = match scale {
        YScale::Linear => y,
        YScale::Log10 if y > 0.0 => y.log10(),
        YScale::Log10 => return None,
    };
    t.is_finite().then_some(t)
}

/// The drawable points of a series in plot space, sorted by x.
fn plot_points(s: &Series, scale: YScale) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = s
        .points
        .iter()
        .filter(|p| p.0.is_finite())
        .filter_map(|&(x, y)| Some((x, transform(y, scale)?)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// Linear-interpolated quantile of sorted values, q in [0, 1].
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    if i + 1 < sorted.len() {
        sorted[i] + (sorted[i + 1] - sorted[i]) * frac
    } else {
        sorted[i]
    }
}

/// Widens an empty or degenerate range so it can be mapped to pixels.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if hi - lo > 1e-12 * lo.abs().max(hi.abs()).max(1e-300) {
        (lo, hi)
    } else {
        let d = (lo.abs() * 0.05).max(0.5);
        (lo - d, hi + d)
    }
}

/// (x range, y range) in plot space, or `None` with no drawable point.
fn ranges(points: &[Vec<(f64, f64)>], clip: Option<f64>) -> Option<((f64, f64), (f64, f64))> {
    let all: Vec<(f64, f64)> = points.iter().flatten().copied().collect();
    if all.is_empty() {
        return None;
    }
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(x, _) in &all {
        x0 = x0.min(x);
        x1 = x1.max(x);
    }
    let mut ys: Vec<f64> = all.iter().map(|p| p.1).collect();
    ys.sort_by(f64::total_cmp);
    let p = clip
        .filter(|p| *p > 0.0)
        .map_or(0.0, |p| p.min(49.0) / 100.0);
    let (y0, y1) = (quantile(&ys, p), quantile(&ys, 1.0 - p));
    let (y0, y1) = widen(y0, y1);
    let pad = (y1 - y0) * 0.05;
    Some((widen(x0, x1), (y0 - pad, y1 + pad)))
}

/// Tick spacing of 1, 2 or 5 times a power of ten giving about `target` intervals.
fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn linear_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let step = nice_step(hi - lo, target);
    let mut ticks = Vec::new();
    let mut k = (lo / step).ceil();
    while k * step <= hi + step * 1e-9 && ticks.len() < 100 {
        let v = k * step;
        // Snap rounding noise like 3e-17 to an exact zero (and -0.0 to 0.0).
        ticks.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        k += 1.0;
    }
    (ticks, step)
}

/// Shortest labels that tell the ticks apart: fixed point for moderate magnitudes, otherwise
/// exponent notation such as `2.5e-4`.
fn format_ticks(ticks: &[f64], step: f64) -> Vec<String> {
    let max_abs = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if max_abs >= 1e6 || (max_abs > 0.0 && max_abs < 1e-3) {
        for p in 0..=6 {
            let labels: Vec<String> = ticks.iter().map(|v| format!("{v:.p$e}")).collect();
            if labels.windows(2).all(|w| w[0] != w[1]) {
                return labels;
            }
        }
        ticks.iter().map(|v| format!("{v:e}")).collect()
    } else {
        let decimals = (-step.log10().floor()).clamp(0.0, 12.0) as usize;
        ticks.iter().map(|v| format!("{v:.decimals$}")).collect()
    }
}

/// Ticks (plot-space positions) and labels for the y axis.
fn y_ticks(lo: f64, hi: f64, target: usize, scale: YScale) -> Vec<(f64, String)> {
    match scale {
        YScale::Linear => {
            let (t, step) = linear_ticks(lo, hi, target);
            let labels = format_ticks(&t, step);
            t.into_iter().zip(labels).collect()
        }
        YScale::Log10 => {
            let (first, last) = (lo.ceil(), hi.floor());
            if last - first >= 1.0 {
                // At least two powers of ten in view: label those.
                let every = ((last - first + 1.0) / target.max(1) as f64)
                    .ceil()
                    .max(1.0);
                let mut out = Vec::new();
                let mut k = first;
                while k <= last {
                    let label = if (-3.0..=4.0).contains(&k) {
                        format_ticks(&[10f64.powf(k)], 10f64.powf(k.min(0.0)))[0].clone()
                    } else {
                        format!("1e{k}")
                    };
                    out.push((k, label));
                    k += every;
                }
                out
            } else {
                // Less than a decade: linear ticks of the value, placed at their logarithm.
                let (vlo, vhi) = (10f64.powf(lo), 10f64.powf(hi));
                let (t, step) = linear_ticks(vlo, vhi, target);
                let t: Vec<f64> = t.into_iter().filter(|v| *v > 0.0).collect();
                let labels = format_ticks(&t, step);
                t.into_iter().map(f64::log10).zip(labels).collect()
            }
        }
    }
}

/// x ticks, as many as fit without labels touching.
fn x_ticks(lo: f64, hi: f64, plot_w: i64, font: u32) -> Vec<(f64, String)> {
    for target in (2..=10).rev() {
        let (t, step) = linear_ticks(lo, hi, target);
        let labels = format_ticks(&t, step);
        let widest = labels
            .iter()
            .map(|l| text_width(l, font))
            .max()
            .unwrap_or(0) as i64;
        if t.len() <= 1 || (widest + 12 * font as i64) * t.len() as i64 <= plot_w {
            return t.into_iter().zip(labels).collect();
        }
    }
    let (t, step) = linear_ticks(lo, hi, 1);
    let labels = format_ticks(&t, step);
    t.into_iter().zip(labels).collect()
}

/// Pixel rectangle, inclusive bounds.
#[derive(Clone, Copy, Debug)]
struct Rect {
    x0: i64,
    y0: i64,
    x1: i64,
    y1: i64,
}

impl Rect {
    fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.x0 && x <= self.x1 && y >= self.y0 && y <= self.y1
    }
}

/// Liang-Barsky: the part of segment p-q inside `r` (in continuous pixel coordinates).
fn clip_segment(p: (f64, f64), q: (f64, f64), r: &Rect) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    let edges = [
        (-dx, p.0 - r.x0 as f64),
        (dx, r.x1 as f64 - p.0),
        (-dy, p.1 - r.y0 as f64),
        (dy, r.y1 as f64 - p.1),
    ];
    for (pk, qk) in edges {
        if pk == 0.0 {
            if qk < 0.0 {
                return None;
            }
        } else {
            let t = qk / pk;
            if pk < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some((
        (p.0 + t0 * dx, p.1 + t0 * dy),
        (p.0 + t1 * dx, p.1 + t1 * dy),
    ))
}

/// Per-pixel coverage of one series, combined by maximum.
struct Coverage {
    w: i64,
    clip: Rect,
    cov: Vec<f32>,
}

impl Coverage {
    fn new(w: u32, h: u32, clip: Rect) -> Self {
        Coverage {
            w: w as i64,
            clip,
            cov: vec![0.0; w as usize * h as usize],
        }
    }

    fn mark(&mut self, x: i64, y: i64, a: f64) {
        if a > 0.0 && self.clip.contains(x, y) {
            let c = &mut self.cov[(y * self.w + x) as usize];
            *c = c.max(a.min(1.0) as f32);
        }
    }

    fn line(&mut self, p: (f64, f64), q: (f64, f64), width: f64) {
        let Some((p, q)) = clip_segment(p, q, &self.clip) else {
            return;
        };
        let steep = (q.1 - p.1).abs() > (q.0 - p.0).abs();
        // (major, minor) coordinates, major increasing.
        let (mut a0, mut b0, mut a1, mut b1) = if steep {
            (p.1, p.0, q.1, q.0)
        } else {
            (p.0, p.1, q.0, q.1)
        };
        if a0 > a1 {
            std::mem::swap(&mut a0, &mut a1);
            std::mem::swap(&mut b0, &mut b1);
        }
        let slope = if a1 > a0 { (b1 - b0) / (a1 - a0) } else { 0.0 };
        let half = 0.5 * width * (1.0 + slope * slope).sqrt();
        let mut a = a0.round();
        while a <= a1.round() {
            let c = b0 + (a.clamp(a0, a1) - a0) * slope;
            let mut b = (c - half).round();
            while b <= (c + half).round() {
                let overlap = (c + half).min(b + 0.5) - (c - half).max(b - 0.5);
                let (x, y) = if steep { (b, a) } else { (a, b) };
                self.mark(x as i64, y as i64, overlap);
                b += 1.0;
            }
            a += 1.0;
        }
    }

    fn dot(&mut self, p: (f64, f64), radius: f64) {
        let reach = radius.ceil() as i64 + 1;
        let (cx, cy) = (p.0.round() as i64, p.1.round() as i64);
        for y in cy - reach..=cy + reach {
            for x in cx - reach..=cx + reach {
                let d = ((x as f64 - p.0).powi(2) + (y as f64 - p.1).powi(2)).sqrt();
                self.mark(x, y, (radius + 0.5 - d).clamp(0.0, 1.0));
            }
        }
    }

    fn blend(&self, img: &mut RgbImage, colour: [u8; 3], occupied: &mut [bool]) {
        for (i, &a) in self.cov.iter().enumerate() {
            if a <= 0.0 {
                continue;
            }
            let (x, y) = ((i as i64 % self.w) as u32, (i as i64 / self.w) as u32);
            let px = img.get_pixel_mut(x, y);
            for (c, &t) in px.0.iter_mut().zip(&colour) {
                *c = (*c as f32 * (1.0 - a) + t as f32 * a).round() as u8;
            }
            if a > 0.25 {
                occupied[i] = true;
            }
        }
    }
}

fn fill_rect(img: &mut RgbImage, r: Rect, colour: Rgb<u8>) {
    for y in r.y0.max(0)..=r.y1.min(img.height() as i64 - 1) {
        for x in r.x0.max(0)..=r.x1.min(img.width() as i64 - 1) {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

fn frame_rect(img: &mut RgbImage, r: Rect, colour: Rgb<u8>) {
    fill_rect(img, Rect { y1: r.y0, ..r }, colour);
    fill_rect(img, Rect { y0: r.y1, ..r }, colour);
    fill_rect(img, Rect { x1: r.x0, ..r }, colour);
    fill_rect(img, Rect { x0: r.x1, ..r }, colour);
}

/// Draws the plot.
pub fn render(series: &[Series], opts: &PlotOptions) -> RgbImage {
    let mut img = RgbImage::from_pixel(opts.width, opts.height, BACKGROUND);
    let points: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|sr| plot_points(sr, opts.y_scale))
        .collect();
    let found = ranges(&points, opts.clip_percentile);
    let (x, y) = found.unwrap_or(((0.0, 1.0), (0.0, 1.0)));
    let Some(frame) = Frame::layout(opts, x, y) else {
        return img;
    };
    // Grid lines, then data, then frame and ticks on top.
    frame.draw_grid(&mut img);
    let occupied = frame.draw_series(&mut img, &points, opts.line_width);
    frame.draw_ticks(&mut img);
    frame.draw_titles(&mut img, opts, found.is_none());
    draw_legend(&mut img, series, frame.r, frame.s, &occupied);
    img
}

/// Where the plot area lies in the image, how values map into it, and its ticks.
struct Frame {
    r: Rect,
    x: (f64, f64),
    y: (f64, f64),
    plot_w: i64,
    plot_h: i64,
    /// Font scale and the height of a line of text in pixels.
    s: u32,
    char_h: i64,
    xt: Vec<(f64, String)>,
    yt: Vec<(f64, String)>,
}

impl Frame {
    /// The plot area for the value ranges `x` and `y`; `None` when the image is too small.
    fn layout(opts: &PlotOptions, x: (f64, f64), y: (f64, f64)) -> Option<Frame> {
        let (w, h) = (opts.width, opts.height);
        let s = opts.font_scale.max(1);
        let char_h = (GLYPH_H * s) as i64;
        // Margins: y labels on the left, x labels and axis label below, title above.
        let top = PAD
            + opts.title.as_ref().map_or(0, |_| char_h + PAD)
            + opts.y_label.as_ref().map_or(0, |_| char_h + PAD / 2);
        let bottom =
            PAD + TICK_LEN + 4 + char_h + opts.x_label.as_ref().map_or(0, |_| PAD + char_h);
        let plot_h = h as i64 - top - bottom;
        let y_target = (plot_h / (char_h * 3)).clamp(2, 10) as usize;
        let yt = y_ticks(y.0, y.1, y_target, opts.y_scale);
        let label_w = yt.iter().map(|t| text_width(&t.1, s)).max().unwrap_or(0) as i64;
        let left = PAD + label_w + 4 + TICK_LEN;
        let right = PAD + 3 * 6 * s as i64;
        let plot_w = w as i64 - left - right;
        if plot_w < 4 || plot_h < 4 {
            return None;
        }
        let r = Rect {
            x0: left,
            y0: top,
            x1: left + plot_w - 1,
            y1: top + plot_h - 1,
        };
        let xt = x_ticks(x.0, x.1, plot_w, s);
        Some(Frame {
            r,
            x,
            y,
            plot_w,
            plot_h,
            s,
            char_h,
            xt,
            yt,
        })
    }

    fn px(&self, x: f64) -> f64 {
        let (x0, x1) = self.x;
        self.r.x0 as f64 + (x - x0) / (x1 - x0) * (self.plot_w - 1) as f64
    }

    fn py(&self, y: f64) -> f64 {
        let (y0, y1) = self.y;
        self.r.y1 as f64 - (y - y0) / (y1 - y0) * (self.plot_h - 1) as f64
    }

    fn draw_grid(&self, img: &mut RgbImage) {
        let r = self.r;
        for (v, _) in &self.yt {
            let y = self.py(*v).round() as i64;
            if y > r.y0 && y < r.y1 {
                fill_rect(img, Rect { y0: y, y1: y, ..r }, GRID);
            }
        }
        for (v, _) in &self.xt {
            let x = self.px(*v).round() as i64;
            if x > r.x0 && x < r.x1 {
                fill_rect(img, Rect { x0: x, x1: x, ..r }, GRID);
            }
        }
    }

    /// Every series in its colour, inside the frame; returns which pixels they cover.
    fn draw_series(&self, img: &mut RgbImage, points: &[Vec<(f64, f64)>], width: f64) -> Vec<bool> {
        let r = self.r;
        let inner = Rect {
            x0: r.x0 + 1,
            y0: r.y0 + 1,
            x1: r.x1 - 1,
            y1: r.y1 - 1,
        };
        let (w, h) = (img.width(), img.height());
        let mut occupied = vec![false; w as usize * h as usize];
        for (i, pts) in points.iter().enumerate() {
            let mut cov = Coverage::new(w, h, inner);
            if let [p] = pts[..] {
                cov.dot((self.px(p.0), self.py(p.1)), width.max(1.5));
            }
            for seg in pts.windows(2) {
                let (a, b) = (seg[0], seg[1]);
                let (pa, pb) = ((self.px(a.0), self.py(a.1)), (self.px(b.0), self.py(b.1)));
                cov.line(pa, pb, width);
            }
            cov.blend(img, colour(i), &mut occupied);
        }
        occupied
    }

    /// The frame, and the ticks with their labels on both axes.
    fn draw_ticks(&self, img: &mut RgbImage) {
        let (r, s, char_h) = (self.r, self.s, self.char_h);
        frame_rect(img, r, FOREGROUND);
        for (v, label) in &self.yt {
            let y = self.py(*v).round() as i64;
            if y < r.y0 || y > r.y1 {
                continue;
            }
            let tick = Rect {
                x0: r.x0 - TICK_LEN,
                x1: r.x0 - 1,
                y0: y,
                y1: y,
            };
            fill_rect(img, tick, FOREGROUND);
            let tw = text_width(label, s) as i64;
            let x = r.x0 - TICK_LEN - 4 - tw;
            draw_text(img, x, y - char_h / 2, label, FOREGROUND, s);
        }
        for (v, label) in &self.xt {
            let x = self.px(*v).round() as i64;
            if x < r.x0 || x > r.x1 {
                continue;
            }
            let tick = Rect {
                x0: x,
                x1: x,
                y0: r.y1 + 1,
                y1: r.y1 + TICK_LEN,
            };
            fill_rect(img, tick, FOREGROUND);
            let tw = text_width(label, s) as i64;
            draw_text(img, x - tw / 2, r.y1 + TICK_LEN + 4, label, FOREGROUND, s);
        }
    }

    /// The title, the axis labels, and "no data" when nothing could be drawn.
    fn draw_titles(&self, img: &mut RgbImage, opts: &PlotOptions, no_data: bool) {
        let (r, s, char_h) = (self.r, self.s, self.char_h);
        let centre_x = |text: &str| r.x0 + (self.plot_w - text_width(text, s) as i64) / 2;
        if let Some(t) = &opts.title {
            draw_text(img, centre_x(t), PAD, t, FOREGROUND, s);
        }
        if let Some(t) = &opts.y_label {
            draw_text(img, PAD, r.y0 - PAD / 2 - char_h, t, FOREGROUND, s);
        }
        if let Some(t) = &opts.x_label {
            let y = r.y1 + TICK_LEN + 4 + char_h + PAD;
            draw_text(img, centre_x(t), y, t, FOREGROUND, s);
        }
        if no_data {
            let t = "no data";
            let y = r.y0 + (self.plot_h - char_h) / 2;
            draw_text(img, centre_x(t), y, t, FOREGROUND, s);
        }
    }
}

/// Legend box in whichever corner of the plot covers the fewest drawn data pixels.
fn draw_legend(img: &mut RgbImage, series: &[Series], plot: Rect, s: u32, occupied: &[bool]) {
    const MAX_CHARS: usize = 40;
    let entries: Vec<(usize, String)> = series
        .iter()
        .enumerate()
        .filter(|(_, sr)| !sr.name.is_empty())
        .map(|(i, sr)| {
            let name = if sr.name.chars().count() > MAX_CHARS {
                sr.name
                    .chars()
                    .take(MAX_CHARS - 2)
                    .chain("..".chars())
                    .collect()
            } else {
                sr.name.clone()
            };
            (i, name)
        })
        .collect();
    if entries.is_empty() {
        return;
    }
    let si = s as i64;
    let char_h = GLYPH_H as i64 * si;
    let (pad, swatch, row_h) = (3 * si, char_h, char_h + 3 * si);
    let name_w = entries
        .iter()
        .map(|e| text_width(&e.1, s))
        .max()
        .unwrap_or(0) as i64;
    let bw = pad + swatch + 2 * si + name_w + pad;
    let bh = pad + entries.len() as i64 * row_h - 3 * si + pad;
    let inset = 6;
    if bw + 2 * inset > plot.x1 - plot.x0 || bh + 2 * inset > plot.y1 - plot.y0 {
        return;
    }
    let corners = [
        (plot.x1 - inset - bw, plot.y0 + inset),
        (plot.x0 + inset, plot.y0 + inset),
        (plot.x1 - inset - bw, plot.y1 - inset - bh),
        (plot.x0 + inset, plot.y1 - inset - bh),
    ];
    let width = img.width() as i64;
    let hidden = |&(x, y): &(i64, i64)| {
        (y..y + bh)
            .flat_map(|yy| (x..x + bw).map(move |xx| (xx, yy)))
            .filter(|&(xx, yy)| occupied[(yy * width + xx) as usize])
            .count()
    };
    // min_by_key keeps the first of equal counts: top-right is preferred.
    let (bx, by) = *corners.iter().min_by_key(|c| hidden(c)).unwrap();
    let b = Rect {
        x0: bx,
        y0: by,
        x1: bx + bw - 1,
        y1: by + bh - 1,
    };
    fill_rect(img, b, BACKGROUND);
    frame_rect(img, b, LEGEND_BORDER);
    for (row, (i, name)) in entries.iter().enumerate() {
        let y = by + pad + row as i64 * row_h;
        let sw = Rect {
            x0: bx + pad,
            y0: y,
            x1: bx + pad + swatch - 1,
            y1: y + swatch - 1,
        };
        fill_rect(img, sw, Rgb(colour(*i)));
        draw_text(img, bx + pad + swatch + 2 * si, y, name, FOREGROUND, s);
    }
}

/// Renders and writes the plot as a PNG at `path` atomically.
pub fn save(path: &Path, series: &[Series], opts: &PlotOptions) -> Result<(), PlotError> {
    let img = render(series, opts);
    atomic::replace_file(path, |tmp| {
        img.save_with_format(tmp, ImageFormat::Png)
            .map_err(|e| match e {
                image::ImageError::IoError(e) => e,
                other => io::Error::other(other),
            })
    })
    .map_err(|source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::atomic::test_dir::names_in;

    fn count_colour(img: &RgbImage, c: [u8; 3], tol: i32) -> usize {
        img.pixels()
            .filter(|p| {
                p.0.iter()
                    .zip(&c)
                    .all(|(&a, &b)| (a as i32 - b as i32).abs() <= tol)
            })
            .count()
    }

    fn opts() -> PlotOptions {
        PlotOptions {
            width: 640,
            height: 400,
            title: Some("Losses".into()),
            y_label: Some("loss".into()),
            ..Default::default()
        }
    }

    #[test]
    fn renders_series_to_requested_size_and_saves() {
        let dir = tempfile::tempdir().unwrap();
        let g: Vec<(f64, f64)> = (0..500)
            .map(|i| (i as f64 * 10.0, (i as f64 * 0.05).sin()))
            .collect();
        let d: Vec<(f64, f64)> = (0..500)
            .map(|i| (i as f64 * 10.0, 0.5 + i as f64 * 1e-3))
            .collect();
        let series = [Series::new("loss_G", g), Series::new("loss_D", d)];
        let path = dir.path().join("loss.png");
        save(&path, &series, &opts()).unwrap();
        assert_eq!(names_in(dir.path()), vec!["loss.png"]);
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (640, 400));
        let blank = RgbImage::from_pixel(640, 400, BACKGROUND);
        assert_ne!(img, blank);
        // Both series colours are present in quantity (lines), not just the legend swatches.
        for i in 0..2 {
            let n = count_colour(&img, colour(i), 10);
            assert!(n > 400, "series {i}: {n} pixels");
        }
        // Text (black) is drawn: title, tick labels.
        assert!(count_colour(&img, [0, 0, 0], 0) > 1000);
    }

    #[test]
    fn line_passes_through_its_points() {
        // A constant series must be drawn along one row across the plot width.
        let pts: Vec<(f64, f64)> = (0..=100).map(|i| (i as f64, 2.0)).collect();
        let o = PlotOptions {
            title: None,
            x_label: None,
            y_label: None,
            ..opts()
        };
        let img = render(&[Series::new("", pts)], &o);
        let c = colour(0);
        let rows: std::collections::BTreeSet<u32> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0 == c)
            .map(|(_, y, _)| y)
            .collect();
        assert!(!rows.is_empty() && rows.len() <= 2, "{rows:?}");
        let y = *rows.iter().next().unwrap();
        let cols = img
            .enumerate_pixels()
            .filter(|(_, yy, p)| *yy == y && p.0 == c)
            .count();
        assert!(cols > 500, "{cols}");
        // A constant is centred vertically after widening the range.
        assert!((y as i64 - 200).abs() < 40, "{y}");
    }

    #[test]
    fn nan_inf_single_point_and_empty_do_not_panic() {
        let nan = Series::new(
            "nan",
            vec![
                (0.0, f64::NAN),
                (1.0, 1.0),
                (2.0, f64::INFINITY),
                (3.0, 2.0),
                (4.0, 3.0),
                (f64::NAN, 5.0),
            ],
        );
        let img = render(&[nan], &opts());
        assert!(count_colour(&img, colour(0), 10) > 100);

        let single = render(&[Series::new("one", vec![(5.0, 0.25)])], &opts());
        // Swatch alone is 14x14 = 196 pixels; the dot adds more.
        assert!(count_colour(&single, colour(0), 10) > 196);

        let all_bad = Series::new("bad", vec![(0.0, f64::NAN), (1.0, f64::NEG_INFINITY)]);
        let img = render(&[all_bad, Series::new("empty", vec![])], &opts());
        assert_eq!(img.dimensions(), (640, 400));
        let _ = render(&[], &opts());
        // Tiny canvases give a blank image rather than a panic.
        for (w, h) in [(0, 0), (1, 1), (30, 20)] {
            let img = render(
                &[Series::new("x", vec![(0.0, 1.0), (1.0, 2.0)])],
                &PlotOptions {
                    width: w,
                    height: h,
                    ..opts()
                },
            );
            assert_eq!(img.dimensions(), (w, h));
        }
    }

    #[test]
    fn clipping_ignores_spikes() {
        let mut pts: Vec<(f64, f64)> = (0..1000)
            .map(|i| (i as f64, 1.0 + (i % 7) as f64 * 0.1))
            .collect();
        pts[0].1 = 1e6;
        pts[1].1 = -5e5;
        let pp = vec![plot_points(&Series::new("a", pts.clone()), YScale::Linear)];
        let (_, (y0, y1)) = ranges(&pp, Some(1.0)).unwrap();
        assert!(y0 > 0.9 && y1 < 1.7, "{y0} {y1}");
        let (_, (y0, y1)) = ranges(&pp, None).unwrap();
        assert!(y0 < -5e5 && y1 > 1e6);
        // The clipped plot still renders the spike as lines leaving the frame.
        let img = render(
            &[Series::new("a", pts)],
            &PlotOptions {
                clip_percentile: Some(1.0),
                ..opts()
            },
        );
        assert!(count_colour(&img, colour(0), 10) > 500);
    }

    #[test]
    fn log_scale_skips_non_positive() {
        let pts: Vec<(f64, f64)> = (1..=200)
            .map(|i| (i as f64, 100.0 / i as f64))
            .chain([(201.0, 0.0), (202.0, -1.0)])
            .collect();
        let pp = vec![plot_points(&Series::new("a", pts.clone()), YScale::Log10)];
        let (_, (y0, y1)) = ranges(&pp, None).unwrap();
        assert!(y0 < -0.3 && y0 > -0.5 && y1 > 2.0 && y1 < 2.2, "{y0} {y1}");
        let ticks = y_ticks(y0, y1, 6, YScale::Log10);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["1", "10", "100"]);
        let img = render(
            &[Series::new("a", pts)],
            &PlotOptions {
                y_scale: YScale::Log10,
                ..opts()
            },
        );
        assert!(count_colour(&img, colour(0), 10) > 300);
        // Less than a decade: linear values placed logarithmically.
        let t = y_ticks(2f64.log10(), 5f64.log10(), 4, YScale::Log10);
        assert_eq!(
            t.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
            ["2", "3", "4", "5"]
        );
    }

    #[test]
    fn tick_labels() {
        let (t, step) = linear_ticks(-0.13, 0.92, 5);
        assert_eq!(step, 0.2);
        assert_eq!(format_ticks(&t, step), ["0.0", "0.2", "0.4", "0.6", "0.8"]);
        let (t, step) = linear_ticks(0.0, 2.5e6, 5);
        assert_eq!(
            format_ticks(&t, step),
            ["0.0e0", "5.0e5", "1.0e6", "1.5e6", "2.0e6", "2.5e6"]
        );
        let (t, step) = linear_ticks(1e-5, 5e-5, 4);
        assert_eq!(
            format_ticks(&t, step),
            ["1e-5", "2e-5", "3e-5", "4e-5", "5e-5"]
        );
        let (t, step) = linear_ticks(0.0, 100_000.0, 5);
        assert_eq!(
            format_ticks(&t, step),
            ["0", "20000", "40000", "60000", "80000", "100000"]
        );
        let (t, step) = linear_ticks(-3.0, 3.0, 6);
        assert_eq!(
            format_ticks(&t, step),
            ["-3", "-2", "-1", "0", "1", "2", "3"]
        );
    }

    #[test]
    fn clip_segment_cases() {
        let r = Rect {
            x0: 0,
            y0: 0,
            x1: 10,
            y1: 10,
        };
        assert_eq!(
            clip_segment((-5.0, 5.0), (15.0, 5.0), &r),
            Some(((0.0, 5.0), (10.0, 5.0)))
        );
        assert_eq!(clip_segment((-5.0, -5.0), (-1.0, 20.0), &r), None);
        let ((_, ya), (_, yb)) = clip_segment((5.0, 5.0), (5.0, -1e300), &r).unwrap();
        assert_eq!((ya, yb), (5.0, 0.0));
    }
}
