//! Animations from RGB frames: an animated GIF or APNG that loops forever, or a folder of
//! numbered PNG frames (`frame0000.png`, ...). Frames are pushed one at a time and encoded as
//! they come, so a long animation is never held in memory.
//!
//! A GIF holds at most 256 colours a frame: each frame gets its own palette, its exact colours
//! when it has at most 256, else 256 picked by NeuQuant. GIF delays are whole hundredths of a
//! second, so `fps` becomes the nearest delay (25 fps is exactly 4/100 s; 30 fps plays at 33).
//! APNG frames are lossless RGB with a delay of exactly 1/fps s; its first frame is also the
//! image that viewers without APNG support show. The GIF and APNG files are written to a
//! temporary sibling and renamed over `path` only when complete, so a failure never leaves a
//! torn file; the same frames give the same bytes.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use image::RgbImage;

use crate::persist::atomic;

use super::images::{self, ImageError};

/// Largest frame rate: GIF delays are counted in hundredths of a second, and browsers play
/// a delay below 2/100 s as 10/100, so anything faster than 50 fps would play slower.
pub const MAX_FPS: u32 = 50;

#[derive(Debug, thiserror::Error)]
pub enum AnimationError {
    #[error("unknown animation format `{0}`: use gif, apng or frames")]
    UnknownFormat(String),
    #[error(
        "cannot tell the animation format of {}: name it .gif, .png or .apng, give a folder \
         for PNG frames, or choose with --format gif|apng|frames",
        .0.display()
    )]
    UnknownExtension(PathBuf),
    #[error("frames of {width}x{height} pixels are too large for a GIF (at most 65535 a side)")]
    GifTooLarge { width: u32, height: u32 },
    #[error("frame {index} is {got:?} pixels; the animation's frames are {want:?}")]
    FrameSize {
        index: usize,
        got: (u32, u32),
        want: (u32, u32),
    },
    #[error("the animation was announced with {want} frames but {got} were written")]
    FrameCount { want: usize, got: usize },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Gif {
        path: PathBuf,
        source: gif::EncodingError,
    },
    #[error("{}: {source}", path.display())]
    Png {
        path: PathBuf,
        source: png::EncodingError,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// How an animation is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Gif,
    Apng,
    /// A folder of numbered PNG files.
    Frames,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Gif => "gif",
            Format::Apng => "apng",
            Format::Frames => "frames",
        }
    }

    /// The format named `name` (`gif`, `apng` or `frames`, any case).
    pub fn parse(name: &str) -> Result<Format, AnimationError> {
        match name.to_ascii_lowercase().as_str() {
            "gif" => Ok(Format::Gif),
            "apng" => Ok(Format::Apng),
            "frames" => Ok(Format::Frames),
            _ => Err(AnimationError::UnknownFormat(name.to_string())),
        }
    }

    /// The format `path` asks for: `.gif`; `.png` or `.apng`; a folder for frames (an existing
    /// directory, or a name without an extension).
    pub fn infer(path: &Path) -> Result<Format, AnimationError> {
        if path.is_dir() {
            return Ok(Format::Frames);
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            None => Ok(Format::Frames),
            Some("gif") => Ok(Format::Gif),
            Some("png") | Some("apng") => Ok(Format::Apng),
            Some(_) => Err(AnimationError::UnknownExtension(path.to_path_buf())),
        }
    }

    /// `name` when given, else what `path` asks for.
    pub fn resolve(name: Option<&str>, path: &Path) -> Result<Format, AnimationError> {
        match name {
            Some(name) => Format::parse(name),
            None => Format::infer(path),
        }
    }
}

/// The name of frame `i` in a folder of frames.
pub fn frame_name(i: usize) -> String {
    format!("frame{i:04}.png")
}

/// The GIF delay of one frame at `fps`, in hundredths of a second (at least 2; see
/// [`MAX_FPS`]).
pub fn gif_delay(fps: u32) -> u16 {
    let fps = fps.max(1);
    ((200 + fps) / (2 * fps)).clamp(2, u16::MAX as u32) as u16
}

/// An animation being written; [`AnimationWriter::finish`] completes it.
pub struct AnimationWriter {
    path: PathBuf,
    size: (u32, u32),
    /// Frames announced (APNG needs the count up front; the others check it at the end).
    frames: usize,
    written: usize,
    kind: Kind,
}

enum Kind {
    Gif {
        encoder: gif::Encoder<BufWriter<File>>,
        delay: u16,
        temp: Temp,
    },
    Apng {
        writer: png::Writer<BufWriter<File>>,
        temp: Temp,
    },
    Frames,
}

/// The temporary sibling a file is written to, removed unless it was renamed into place.
struct Temp {
    path: PathBuf,
    target: PathBuf,
    /// A second handle on the file, to sync it: png's writer does not give its own back.
    file: File,
    committed: bool,
}

impl Temp {
    fn create(target: &Path) -> Result<(Temp, BufWriter<File>), AnimationError> {
        let path = atomic::temp_path(target);
        let file = File::create(&path).map_err(|source| AnimationError::Io {
            path: target.to_path_buf(),
            source,
        })?;
        let temp = Temp {
            path,
            target: target.to_path_buf(),
            file: file.try_clone().map_err(|source| AnimationError::Io {
                path: target.to_path_buf(),
                source,
            })?,
            committed: false,
        };
        Ok((temp, BufWriter::new(file)))
    }

    /// Syncs the file, whose writer has been flushed, and renames it over the target.
    fn commit(mut self) -> Result<(), AnimationError> {
        let io = |source| AnimationError::Io {
            path: self.target.clone(),
            source,
        };
        self.file.sync_all().map_err(io)?;
        fs::rename(&self.path, &self.target).map_err(io)?;
        self.committed = true;
        atomic::sync_dir(atomic::parent_dir(&self.target)).map_err(io)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl AnimationWriter {
    /// Starts an animation of `frames` frames of `width` x `height` pixels at `fps` frames a
    /// second (1 to [`MAX_FPS`]) in `format` at `path` (for frames, a folder, created if
    /// needed).
    pub fn create(
        format: Format,
        path: &Path,
        (width, height): (u32, u32),
        frames: usize,
        fps: u32,
    ) -> Result<AnimationWriter, AnimationError> {
        assert!(frames > 0, "an animation of no frames");
        assert!((1..=MAX_FPS).contains(&fps), "fps {fps} out of range");
        let kind = match format {
            Format::Gif => {
                let too_large = AnimationError::GifTooLarge { width, height };
                let w = u16::try_from(width).map_err(|_| too_large)?;
                let h = u16::try_from(height)
                    .map_err(|_| AnimationError::GifTooLarge { width, height })?;
                let (temp, file) = Temp::create(path)?;
                let gif_err = |source| AnimationError::Gif {
                    path: path.to_path_buf(),
                    source,
                };
                let mut encoder = gif::Encoder::new(file, w, h, &[]).map_err(gif_err)?;
                encoder.set_repeat(gif::Repeat::Infinite).map_err(gif_err)?;
                Kind::Gif {
                    encoder,
                    delay: gif_delay(fps),
                    temp,
                }
            }
            Format::Apng => {
                let png_err = |source| AnimationError::Png {
                    path: path.to_path_buf(),
                    source,
                };
                let count = u32::try_from(frames).expect("frame counts are bounded");
                let (temp, file) = Temp::create(path)?;
                let mut encoder = png::Encoder::new(file, width, height);
                encoder.set_color(png::ColorType::Rgb);
                encoder.set_depth(png::BitDepth::Eight);
                // 0 plays: forever.
                encoder.set_animated(count, 0).map_err(png_err)?;
                encoder.set_frame_delay(1, fps as u16).map_err(png_err)?;
                let writer = encoder.write_header().map_err(png_err)?;
                Kind::Apng { writer, temp }
            }
            Format::Frames => {
                fs::create_dir_all(path).map_err(|source| AnimationError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                Kind::Frames
            }
        };
        Ok(AnimationWriter {
            path: path.to_path_buf(),
            size: (width, height),
            frames,
            written: 0,
            kind,
        })
    }

    /// Appends the next frame.
    pub fn push(&mut self, frame: &RgbImage) -> Result<(), AnimationError> {
        if frame.dimensions() != self.size {
            return Err(AnimationError::FrameSize {
                index: self.written,
                got: frame.dimensions(),
                want: self.size,
            });
        }
        if self.written == self.frames {
            return Err(AnimationError::FrameCount {
                want: self.frames,
                got: self.written + 1,
            });
        }
        let (w, h) = self.size;
        match &mut self.kind {
            Kind::Gif { encoder, delay, .. } => {
                // Speed 10 of 1..30: gif's suggested balance of NeuQuant's quality and time.
                let mut gif_frame = gif::Frame::from_rgb_speed(w as u16, h as u16, frame, 10);
                gif_frame.delay = *delay;
                encoder
                    .write_frame(&gif_frame)
                    .map_err(|source| AnimationError::Gif {
                        path: self.path.clone(),
                        source,
                    })?;
            }
            Kind::Apng { writer, .. } => {
                writer
                    .write_image_data(frame)
                    .map_err(|source| AnimationError::Png {
                        path: self.path.clone(),
                        source,
                    })?;
            }
            Kind::Frames => {
                images::save_png(&self.path.join(frame_name(self.written)), frame)?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Completes the animation: renames the file into place, or for frames removes the
    /// numbered frames past the last one that an earlier, longer animation left in the
    /// folder (so the folder holds exactly this animation's frames).
    pub fn finish(self) -> Result<(), AnimationError> {
        if self.written != self.frames {
            return Err(AnimationError::FrameCount {
                want: self.frames,
                got: self.written,
            });
        }
        let path = self.path;
        match self.kind {
            Kind::Gif { encoder, temp, .. } => {
                let mut file = encoder.into_inner().map_err(|source| AnimationError::Gif {
                    path: path.clone(),
                    source,
                })?;
                file.flush()
                    .map_err(|source| AnimationError::Io { path, source })?;
                drop(file);
                temp.commit()
            }
            Kind::Apng { writer, temp } => {
                // Writes the end chunk and flushes.
                writer
                    .finish()
                    .map_err(|source| AnimationError::Png { path, source })?;
                temp.commit()
            }
            Kind::Frames => remove_stale_frames(&path, self.frames),
        }
    }
}

/// Removes `frameNNNN.png` files numbered `count` or more from `dir`.
fn remove_stale_frames(dir: &Path, count: usize) -> Result<(), AnimationError> {
    let io = |source| AnimationError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let index = name
            .to_str()
            .and_then(|n| n.strip_prefix("frame")?.strip_suffix(".png"))
            .filter(|digits| digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<usize>().ok());
        if index.is_some_and(|i| i >= count) {
            fs::remove_file(entry.path()).map_err(io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::atomic::test_dir::names_in;
    use image::{AnimationDecoder, Rgb};
    use std::io::BufReader;

    /// Frame `k` of a test animation: a pattern of few colours (a GIF keeps them exactly).
    fn frame(k: u32, w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 40 + k * 60) as u8,
                (y * 50) as u8,
                (k * 90 + x * y) as u8,
            ])
        })
    }

    fn write(format: Format, path: &Path, frames: &[RgbImage], fps: u32) {
        let mut writer =
            AnimationWriter::create(format, path, frames[0].dimensions(), frames.len(), fps)
                .unwrap();
        for f in frames {
            writer.push(f).unwrap();
        }
        writer.finish().unwrap();
    }

    #[test]
    fn gif_decodes_to_the_frames_looping_with_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("walk.gif");
        let frames: Vec<RgbImage> = (0..3).map(|k| frame(k, 5, 4)).collect();
        write(Format::Gif, &path, &frames, 25);
        // Only the GIF itself: the temporary file was renamed into place.
        assert_eq!(names_in(dir.path()), vec!["walk.gif"]);

        let file = BufReader::new(File::open(&path).unwrap());
        let decoded = image::codecs::gif::GifDecoder::new(file)
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap();
        assert_eq!(decoded.len(), 3);
        for (want, got) in frames.iter().zip(&decoded) {
            assert_eq!(got.delay().numer_denom_ms(), (40, 1));
            let rgb = image::DynamicImage::ImageRgba8(got.buffer().clone()).to_rgb8();
            // 20 colours a frame: the palette holds them exactly.
            assert_eq!(&rgb, want);
        }
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options.read_info(File::open(&path).unwrap()).unwrap();
        while decoder.read_next_frame().unwrap().is_some() {}
        assert_eq!(decoder.repeat(), gif::Repeat::Infinite);
    }

    #[test]
    fn gif_of_many_colours_is_close_and_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        // 16,384 colours: NeuQuant picks 256.
        let smooth = RgbImage::from_fn(128, 128, |x, y| Rgb([(x * 2) as u8, (y * 2) as u8, 128]));
        let frames = vec![smooth.clone(), smooth];
        let (a, b) = (dir.path().join("a.gif"), dir.path().join("b.gif"));
        write(Format::Gif, &a, &frames, 10);
        write(Format::Gif, &b, &frames, 10);
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
        let got = image::open(&a).unwrap().to_rgb8();
        let errors: Vec<u32> = got
            .pixels()
            .zip(frames[0].pixels())
            .flat_map(|(p, q)| (0..3).map(move |c| p[c].abs_diff(q[c]) as u32))
            .collect();
        let mean = errors.iter().sum::<u32>() as f64 / errors.len() as f64;
        // A 16x16 grid of the 256 colours would be off by 2.7 on average; NeuQuant is near.
        assert!(mean < 6.0, "mean channel error {mean}");
    }

    #[test]
    fn apng_holds_every_frame_losslessly_with_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("walk.png");
        let frames: Vec<RgbImage> = (0..4).map(|k| frame(k, 6, 3)).collect();
        write(Format::Apng, &path, &frames, 30);
        assert_eq!(names_in(dir.path()), vec!["walk.png"]);

        let file = BufReader::new(File::open(&path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let control = reader.info().animation_control.unwrap();
        assert_eq!((control.num_frames, control.num_plays), (4, 0));
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        for want in &frames {
            let info = reader.next_frame(&mut buf).unwrap();
            assert_eq!((info.width, info.height), (6, 3));
            let fc = reader.info().frame_control.unwrap();
            assert_eq!((fc.delay_num, fc.delay_den), (1, 30));
            assert_eq!(&buf[..info.buffer_size()], want.as_raw().as_slice());
        }
        // A viewer without APNG support shows the first frame.
        assert_eq!(image::open(&path).unwrap().to_rgb8(), frames[0]);
    }

    #[test]
    fn frames_are_numbered_pngs_and_stale_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("walk");
        let frames: Vec<RgbImage> = (0..5).map(|k| frame(k, 4, 4)).collect();
        write(Format::Frames, &out, &frames, 25);
        fs::write(out.join("notes.txt"), b"kept").unwrap();
        // A shorter animation into the same folder leaves only its own frames.
        write(Format::Frames, &out, &frames[..2], 25);
        assert_eq!(
            names_in(&out),
            vec!["frame0000.png", "frame0001.png", "notes.txt"]
        );
        assert_eq!(
            image::open(out.join("frame0001.png")).unwrap().to_rgb8(),
            frames[1]
        );
    }

    #[test]
    fn a_wrong_frame_or_count_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        for format in [Format::Gif, Format::Apng] {
            let path = dir.path().join(format!("x.{}", format.name()));
            let mut writer = AnimationWriter::create(format, &path, (4, 4), 2, 25).unwrap();
            let e = writer.push(&frame(0, 5, 4)).unwrap_err();
            assert!(
                matches!(e, AnimationError::FrameSize { index: 0, .. }),
                "{e}"
            );
            writer.push(&frame(0, 4, 4)).unwrap();
            let e = writer.finish().unwrap_err();
            assert!(
                matches!(e, AnimationError::FrameCount { want: 2, got: 1 }),
                "{e}"
            );
            assert_eq!(names_in(dir.path()), Vec::<String>::new(), "{format:?}");
        }
    }

    #[test]
    fn formats_by_name_and_by_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Format::infer(Path::new("a/walk.gif")).unwrap(), Format::Gif);
        assert_eq!(Format::infer(Path::new("walk.GIF")).unwrap(), Format::Gif);
        assert_eq!(Format::infer(Path::new("walk.png")).unwrap(), Format::Apng);
        assert_eq!(Format::infer(Path::new("walk.apng")).unwrap(), Format::Apng);
        assert_eq!(Format::infer(Path::new("walk")).unwrap(), Format::Frames);
        let folder = dir.path().join("frames.v2");
        fs::create_dir(&folder).unwrap();
        assert_eq!(Format::infer(&folder).unwrap(), Format::Frames);
        let e = Format::infer(Path::new("walk.mp4"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("walk.mp4") && e.contains("--format"), "{e}");
        assert_eq!(Format::parse("APNG").unwrap(), Format::Apng);
        let e = Format::parse("webm").unwrap_err().to_string();
        assert!(
            e.contains("`webm`") && e.contains("gif, apng or frames"),
            "{e}"
        );
        // A named format wins over the extension.
        let named = Format::resolve(Some("frames"), Path::new("x.gif")).unwrap();
        assert_eq!(named, Format::Frames);
    }

    #[test]
    fn gif_delays_round_to_hundredths() {
        assert_eq!(gif_delay(25), 4);
        assert_eq!(gif_delay(30), 3);
        assert_eq!(gif_delay(1), 100);
        assert_eq!(gif_delay(50), 2);
        assert_eq!(gif_delay(15), 7);
    }
}
