//! YAML in and out: [`load_str`] parses text into a position-annotated [`Node`] tree, and
//! [`to_yaml_string`] writes a tree back the way upstream's PyYAML does.

mod emit;
mod load;
mod node;
mod resolve11;

pub use emit::{KeyOrder, python_float, quote_string, to_yaml_string};
pub use load::{YamlError, load_str};
pub use node::{Key, Mapping, Node, Value};
