//! A strict, tiny XML tree on top of quick-xml: one root, every element closed with its own
//! name, entities resolved. Used to check that JUnit files, the HTML report and its SVGs are
//! well-formed and to look inside them.

use quick_xml::Reader;
use quick_xml::events::Event;

#[derive(Debug, Clone, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every descendant (depth-first) named `name`.
    pub fn find_all(&self, name: &str) -> Vec<&Element> {
        let mut out = Vec::new();
        for c in &self.children {
            if c.name == name {
                out.push(c);
            }
            out.extend(c.find_all(name));
        }
        out
    }

    /// Text of this element and all descendants.
    pub fn all_text(&self) -> String {
        let mut s = self.text.clone();
        for c in &self.children {
            s.push_str(&c.all_text());
        }
        s
    }
}

fn start(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let name = String::from_utf8(e.name().as_ref().to_vec()).map_err(|e| e.to_string())?;
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| format!("attribute of <{name}>: {e}"))?;
        let k = String::from_utf8(a.key.as_ref().to_vec()).map_err(|e| e.to_string())?;
        let v = a
            .normalized_value(quick_xml::XmlVersion::default())
            .map_err(|e| format!("attribute {k} of <{name}>: {e}"))?
            .to_string();
        attrs.push((k, v));
    }
    Ok(Element {
        name,
        attrs,
        ..Element::default()
    })
}

fn entity(name: &str) -> Result<String, String> {
    Ok(match name {
        "amp" => "&".into(),
        "lt" => "<".into(),
        "gt" => ">".into(),
        "quot" => "\"".into(),
        "apos" => "'".into(),
        n if n.starts_with("#x") => {
            char::from_u32(u32::from_str_radix(&n[2..], 16).map_err(|e| format!("&{n};: {e}"))?)
                .ok_or_else(|| format!("&{n};"))?
                .to_string()
        }
        n if n.starts_with('#') => {
            char::from_u32(n[1..].parse().map_err(|e| format!("&{n};: {e}"))?)
                .ok_or_else(|| format!("&{n};"))?
                .to_string()
        }
        n => return Err(format!("unknown entity &{n};")),
    })
}

/// Parses `xml` strictly.
pub fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut attach = |el: Element, stack: &mut Vec<Element>| -> Result<(), String> {
        match stack.last_mut() {
            Some(parent) => parent.children.push(el),
            None if root.is_none() => root = Some(el),
            None => return Err(format!("a second root element <{}>", el.name)),
        }
        Ok(())
    };
    loop {
        let pos = reader.buffer_position();
        match reader
            .read_event()
            .map_err(|e| format!("at byte {pos}: {e}"))?
        {
            Event::Start(e) => stack.push(start(&e)?),
            Event::Empty(e) => {
                let el = start(&e)?;
                attach(el, &mut stack)?;
            }
            Event::End(e) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| format!("at byte {pos}: unexpected end tag"))?;
                if e.name().as_ref() != el.name.as_bytes() {
                    return Err(format!("at byte {pos}: </…> does not close <{}>", el.name));
                }
                attach(el, &mut stack)?;
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| e.to_string())?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(format!("text outside the root: {s:?}")),
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| e.to_string())?;
                let s = entity(&name)?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| e.to_string())?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("<{}> is never closed", open.name));
    }
    root.ok_or_else(|| "no root element".to_string())
}
