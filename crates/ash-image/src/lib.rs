//! Images from outside, read safely: files opened without following them
//! into devices or pipes, bytes checked for damage, pictures decoded within
//! limits, DICOM objects read and rendered as a viewer would, pictures
//! resized as the encoder's training did.
//!
//! How it works: [`untrusted`] opens and reads a file named from outside
//! (only regular files, reads capped, folder walks that end on link
//! loops). [`decode`] and [`decode_frame`] turn bytes into a picture:
//! DICOM objects through [`dicom`], other formats through the `image` crate
//! after a structural check, every size checked against [`ImageLimits`] from
//! the header first, any decoder panic turned into an [`ImageError`].
//! [`decoded_bytes`] says what decoding will cost before it is done, so a
//! server can reserve memory. [`resize`] makes the pixels a model reads.
//!
//! ```
//! use ash_image::{decode, resize, Channels, Filter, ImageLimits};
//! let mut png = Vec::new();
//! image::DynamicImage::new_rgb8(64, 48)
//!     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
//!     .unwrap();
//! let picture = decode(&png, &ImageLimits::default()).unwrap();
//! let pixels = resize(&picture, 8, 8, Channels::Rgb, Filter::Bilinear).unwrap();
//! assert_eq!(pixels.len(), 8 * 8 * 3);
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod decode;
pub mod dicom;
mod error;
mod integrity;
mod limits;
mod resize;
pub mod untrusted;

pub use decode::{decode, decode_frame, decoded_bytes};
pub use error::ImageError;
pub use limits::ImageLimits;
pub use resize::{resize, Channels, Filter};
