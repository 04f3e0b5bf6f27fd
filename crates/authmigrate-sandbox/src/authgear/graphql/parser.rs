//! A small GraphQL executable-document parser (the October 2021 spec's grammar for
//! operations, fragments, selections, arguments, values, variables and directives; no
//! type-system definitions). Written here instead of taking `graphql-parser`: the
//! emulator needs only this subset, and a parser crate (with `combine`) would add to
//! every CI build for little gain.

use std::collections::HashMap;

/// A source position (1-based), for `errors[].locations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) line: usize,
    pub(super) column: usize,
}

/// An input value as written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Var(String),
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Enum(String),
    List(Vec<Val>),
    Object(Vec<(String, Val)>),
}

/// A field selection.
#[derive(Debug, Clone)]
pub(super) struct Field {
    pub(super) alias: Option<String>,
    pub(super) name: String,
    pub(super) args: Vec<(String, Val)>,
    pub(super) selection: Vec<Selection>,
    pub(super) pos: Pos,
}

impl Field {
    /// The response key (alias or name).
    pub(super) fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// One entry of a selection set.
#[derive(Debug, Clone)]
pub(super) enum Selection {
    Field(Field),
    Spread(String),
    Inline(Option<String>, Vec<Selection>),
}

/// `query` or `mutation` (subscriptions are refused at parse time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    Query,
    Mutation,
}

/// A variable definition.
#[derive(Debug, Clone)]
pub(super) struct VarDef {
    pub(super) name: String,
    /// The type as written (`ID!`, `[String!]`).
    pub(super) ty: String,
    pub(super) default: Option<Val>,
}

/// An operation.
#[derive(Debug, Clone)]
pub(super) struct Operation {
    pub(super) kind: OpKind,
    pub(super) name: Option<String>,
    pub(super) vars: Vec<VarDef>,
    pub(super) selection: Vec<Selection>,
}

/// A named fragment.
#[derive(Debug, Clone)]
pub(super) struct Fragment {
    pub(super) on: String,
    pub(super) selection: Vec<Selection>,
}

/// A parsed document.
#[derive(Debug, Clone, Default)]
pub(super) struct Document {
    pub(super) operations: Vec<Operation>,
    pub(super) fragments: HashMap<String, Fragment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Punct(char),
    Spread,
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
}

fn lex(src: &str) -> Result<Vec<(Tok, Pos)>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, column: col };
        let advance = |n: usize, i: &mut usize, col: &mut usize| {
            *i += n;
            *col += n;
        };
        match c {
            '\n' => {
                i += 1;
                line += 1;
                col = 1;
            }
            ' ' | '\t' | '\r' | ',' | '\u{feff}' => advance(1, &mut i, &mut col),
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '!' | '$' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' | '&' => {
                out.push((Tok::Punct(c), pos));
                advance(1, &mut i, &mut col);
            }
            '.' => {
                if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') {
                    out.push((Tok::Spread, pos));
                    advance(3, &mut i, &mut col);
                } else {
                    return Err(format!("Syntax Error: unexpected \".\" at {line}:{col}"));
                }
            }
            '"' => {
                let block = chars.get(i + 1) == Some(&'"') && chars.get(i + 2) == Some(&'"');
                let mut s = String::new();
                if block {
                    i += 3;
                    col += 3;
                    loop {
                        if i + 2 >= chars.len() + 2 || i >= chars.len() {
                            return Err("Syntax Error: unterminated string".to_owned());
                        }
                        if chars[i] == '"'
                            && chars.get(i + 1) == Some(&'"')
                            && chars.get(i + 2) == Some(&'"')
                        {
                            i += 3;
                            col += 3;
                            break;
                        }
                        if chars[i] == '\n' {
                            line += 1;
                            col = 0;
                        }
                        s.push(chars[i]);
                        i += 1;
                        col += 1;
                    }
                    out.push((Tok::Str(s.trim().to_owned()), pos));
                    continue;
                }
                i += 1;
                col += 1;
                loop {
                    let Some(&ch) = chars.get(i) else {
                        return Err("Syntax Error: unterminated string".to_owned());
                    };
                    i += 1;
                    col += 1;
                    match ch {
                        '"' => break,
                        '\n' => return Err("Syntax Error: unterminated string".to_owned()),
                        '\\' => {
                            let esc = chars.get(i).copied().unwrap_or(' ');
                            i += 1;
                            col += 1;
                            match esc {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                'r' => s.push('\r'),
                                'b' => s.push('\u{8}'),
                                'f' => s.push('\u{c}'),
                                '"' | '\\' | '/' => s.push(esc),
                                'u' => {
                                    let hex: String = chars.iter().skip(i).take(4).collect();
                                    let code = u32::from_str_radix(&hex, 16)
                                        .ok()
                                        .and_then(char::from_u32)
                                        .ok_or("Syntax Error: bad unicode escape")?;
                                    s.push(code);
                                    i += 4;
                                    col += 4;
                                }
                                _ => return Err("Syntax Error: bad escape".to_owned()),
                            }
                        }
                        _ => s.push(ch),
                    }
                }
                out.push((Tok::Str(s), pos));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                let mut float = false;
                while i < chars.len() {
                    let d = chars[i];
                    if d.is_ascii_digit() {
                    } else if d == '.' || d == 'e' || d == 'E' {
                        float = true;
                    } else if (d == '+' || d == '-') && matches!(chars[i - 1], 'e' | 'E') {
                    } else {
                        break;
                    }
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                col += i - start;
                let tok = if float {
                    Tok::Float(
                        text.parse()
                            .map_err(|_| format!("Syntax Error: bad number {text}"))?,
                    )
                } else {
                    Tok::Int(
                        text.parse()
                            .map_err(|_| format!("Syntax Error: bad number {text}"))?,
                    )
                };
                out.push((tok, pos));
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                col += i - start;
                out.push((Tok::Name(chars[start..i].iter().collect()), pos));
            }
            other => {
                return Err(format!(
                    "Syntax Error: unexpected character {other:?} at {line}:{col}"
                ));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> Pos {
        self.toks
            .get(self.at)
            .map(|(_, p)| *p)
            .unwrap_or(Pos { line: 0, column: 0 })
    }

    fn next(&mut self) -> Result<Tok, String> {
        let t = self
            .toks
            .get(self.at)
            .map(|(t, _)| t.clone())
            .ok_or("Syntax Error: unexpected end of document")?;
        self.at += 1;
        Ok(t)
    }

    fn is(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.next()? {
            Tok::Punct(p) if p == c => Ok(()),
            other => Err(format!("Syntax Error: expected {c:?}, found {other:?}")),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        match self.next()? {
            Tok::Name(n) => Ok(n),
            other => Err(format!("Syntax Error: expected a name, found {other:?}")),
        }
    }

    fn document(&mut self) -> Result<Document, String> {
        let mut doc = Document::default();
        while self.peek().is_some() {
            if self.is('{') {
                doc.operations.push(Operation {
                    kind: OpKind::Query,
                    name: None,
                    vars: Vec::new(),
                    selection: self.selection_set()?,
                });
                continue;
            }
            match self.name()?.as_str() {
                "query" => doc.operations.push(self.operation(OpKind::Query)?),
                "mutation" => doc.operations.push(self.operation(OpKind::Mutation)?),
                "fragment" => {
                    let name = self.name()?;
                    if self.name()? != "on" {
                        return Err("Syntax Error: expected \"on\"".to_owned());
                    }
                    let on = self.name()?;
                    self.directives()?;
                    let selection = self.selection_set()?;
                    doc.fragments.insert(name, Fragment { on, selection });
                }
                other => return Err(format!("Syntax Error: unexpected {other:?}")),
            }
        }
        if doc.operations.is_empty() {
            return Err("Syntax Error: no operation".to_owned());
        }
        Ok(doc)
    }

    fn operation(&mut self, kind: OpKind) -> Result<Operation, String> {
        let name = match self.peek() {
            Some(Tok::Name(_)) => Some(self.name()?),
            _ => None,
        };
        let mut vars = Vec::new();
        if self.is('(') {
            self.expect('(')?;
            while !self.is(')') {
                self.expect('$')?;
                let name = self.name()?;
                self.expect(':')?;
                let ty = self.type_ref()?;
                let default = if self.is('=') {
                    self.expect('=')?;
                    Some(self.value(true)?)
                } else {
                    None
                };
                self.directives()?;
                vars.push(VarDef { name, ty, default });
            }
            self.expect(')')?;
        }
        self.directives()?;
        Ok(Operation {
            kind,
            name,
            vars,
            selection: self.selection_set()?,
        })
    }

    fn type_ref(&mut self) -> Result<String, String> {
        let mut ty = if self.is('[') {
            self.expect('[')?;
            let inner = self.type_ref()?;
            self.expect(']')?;
            format!("[{inner}]")
        } else {
            self.name()?
        };
        if self.is('!') {
            self.expect('!')?;
            ty.push('!');
        }
        Ok(ty)
    }

    fn directives(&mut self) -> Result<(), String> {
        while self.is('@') {
            self.expect('@')?;
            self.name()?;
            if self.is('(') {
                self.arguments()?;
            }
        }
        Ok(())
    }

    fn arguments(&mut self) -> Result<Vec<(String, Val)>, String> {
        self.expect('(')?;
        let mut args = Vec::new();
        while !self.is(')') {
            let name = self.name()?;
            self.expect(':')?;
            args.push((name, self.value(false)?));
        }
        self.expect(')')?;
        Ok(args)
    }

    fn selection_set(&mut self) -> Result<Vec<Selection>, String> {
        self.expect('{')?;
        let mut out = Vec::new();
        while !self.is('}') {
            let pos = self.pos();
            if self.peek() == Some(&Tok::Spread) {
                self.next()?;
                match self.peek() {
                    Some(Tok::Name(n)) if n != "on" => {
                        let name = self.name()?;
                        self.directives()?;
                        out.push(Selection::Spread(name));
                    }
                    _ => {
                        let on = if self.peek() == Some(&Tok::Name("on".to_owned())) {
                            self.next()?;
                            Some(self.name()?)
                        } else {
                            None
                        };
                        self.directives()?;
                        out.push(Selection::Inline(on, self.selection_set()?));
                    }
                }
                continue;
            }
            let first = self.name()?;
            let (alias, name) = if self.is(':') {
                self.expect(':')?;
                (Some(first), self.name()?)
            } else {
                (None, first)
            };
            let args = if self.is('(') {
                self.arguments()?
            } else {
                Vec::new()
            };
            self.directives()?;
            let selection = if self.is('{') {
                self.selection_set()?
            } else {
                Vec::new()
            };
            out.push(Selection::Field(Field {
                alias,
                name,
                args,
                selection,
                pos,
            }));
        }
        self.expect('}')?;
        if out.is_empty() {
            return Err("Syntax Error: empty selection set".to_owned());
        }
        Ok(out)
    }

    fn value(&mut self, constant: bool) -> Result<Val, String> {
        Ok(match self.next()? {
            Tok::Punct('$') if !constant => Val::Var(self.name()?),
            Tok::Int(n) => Val::Int(n),
            Tok::Float(f) => Val::Float(f),
            Tok::Str(s) => Val::Str(s),
            Tok::Name(n) => match n.as_str() {
                "true" => Val::Bool(true),
                "false" => Val::Bool(false),
                "null" => Val::Null,
                _ => Val::Enum(n),
            },
            Tok::Punct('[') => {
                let mut items = Vec::new();
                while !self.is(']') {
                    items.push(self.value(constant)?);
                }
                self.expect(']')?;
                Val::List(items)
            }
            Tok::Punct('{') => {
                let mut fields = Vec::new();
                while !self.is('}') {
                    let name = self.name()?;
                    self.expect(':')?;
                    fields.push((name, self.value(constant)?));
                }
                self.expect('}')?;
                Val::Object(fields)
            }
            other => return Err(format!("Syntax Error: unexpected {other:?}")),
        })
    }
}

/// Parses a document; the error is a syntax message.
pub(super) fn parse(src: &str) -> Result<Document, String> {
    let toks = lex(src)?;
    Parser { toks, at: 0 }.document()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operations_fragments_and_values() {
        let doc = parse(
            r#"
            # a comment
            mutation Del($id: ID!, $n: Int = 3) {
              a: deleteUser(input: {userID: $id, reason: "x\"y"}) { deletedUserID }
              ...F
              ... on Mutation { createRole(input: {key: "k", list: [1, 2.5, true, null, ENUM]}) { role { id } } }
            }
            fragment F on Mutation { deleteRole(input: {id: "r"}) { ok } }
            "#,
        )
        .unwrap();
        let op = &doc.operations[0];
        assert_eq!(op.kind, OpKind::Mutation);
        assert_eq!(op.name.as_deref(), Some("Del"));
        assert_eq!(op.vars[0].ty, "ID!");
        assert_eq!(op.vars[1].default, Some(Val::Int(3)));
        let Selection::Field(f) = &op.selection[0] else {
            panic!()
        };
        assert_eq!(f.key(), "a");
        assert_eq!(
            f.pos,
            Pos {
                line: 4,
                column: 15
            }
        );
        let Val::Object(input) = &f.args[0].1 else {
            panic!()
        };
        assert_eq!(input[0], ("userID".to_owned(), Val::Var("id".to_owned())));
        assert_eq!(input[1], ("reason".to_owned(), Val::Str("x\"y".to_owned())));
        assert!(matches!(&op.selection[1], Selection::Spread(n) if n == "F"));
        assert!(matches!(&op.selection[2], Selection::Inline(Some(t), _) if t == "Mutation"));
        assert!(doc.fragments.contains_key("F"));
        assert!(parse("{ users { ").is_err());
        assert!(parse("query { a(b: $c) }").is_ok());
        assert!(parse("{ }").is_err());
    }
}
