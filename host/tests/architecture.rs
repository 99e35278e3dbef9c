//! The host's modules form no import cycle.
//!
//! Every module (a file under `host/src`) is a node; a module depends on
//! another when it names something defined there: through a `use`, or a
//! `crate::`/`super::`/`self::` path in its code. Names a module re-exports
//! (`pub use`) are followed to where they are defined, so a facade
//! (`plugin/mod.rs`) adds no edge of its own; `mod` declarations, and a
//! parent naming its own children, are structure, not dependencies. Test
//! code (`#[cfg(test)]`) is left out. Any strongly connected set of two or
//! more modules fails the test, with the references that close it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

type ModPath = Vec<String>;

/// One module's source, where it is and what it re-exports.
struct Module {
    file: PathBuf,
    ast: syn::File,
    /// `pub use` names: name → the absolute path it stands for.
    reexports: BTreeMap<String, ModPath>,
}

fn module_path(src: &Path, file: &Path) -> Option<ModPath> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.last().map(String::as_str) {
        Some("main") if parts.len() == 1 => return None,
        Some("lib") if parts.len() == 1 => parts.clear(),
        Some("mod") => {
            parts.pop();
        }
        _ => {}
    }
    Some(parts)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta.require_list().is_ok_and(|l| {
                let tokens = l.tokens.to_string();
                tokens == "test" || tokens.starts_with("test ,") || tokens.contains("test)")
            })
    })
}

/// Expands a use tree into (name bound, full path) pairs.
fn flatten(tree: &syn::UseTree, prefix: &mut ModPath, out: &mut Vec<(String, ModPath)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut full = prefix.clone();
            if name != "self" {
                full.push(name.clone());
            }
            let bound = if name == "self" {
                prefix.last().cloned().unwrap_or_default()
            } else {
                name
            };
            out.push((bound, full));
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix.clone();
            if r.ident != "self" {
                full.push(r.ident.to_string());
            }
            out.push((r.rename.to_string(), full));
        }
        syn::UseTree::Glob(_) => out.push(("*".into(), prefix.clone())),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                flatten(tree, prefix, out);
            }
        }
    }
}

/// `path` (as written in module `at`) made absolute, if it is the crate's:
/// `crate::`, `self::`, `super::`, or a child module's name (a relative
/// path, as in `pub use settings::Limits`).
fn absolute(at: &ModPath, path: &[String]) -> Option<ModPath> {
    let mut base = at.clone();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some(first) if MODULES.with(|m| m.borrow().contains(&child(at, first))) => {}
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

thread_local! {
    /// Every module of the crate, for [`absolute`]'s relative paths.
    static MODULES: std::cell::RefCell<BTreeSet<ModPath>> = const {
        std::cell::RefCell::new(BTreeSet::new())
    };
}

fn child(at: &ModPath, name: &str) -> ModPath {
    let mut path = at.clone();
    path.push(name.to_owned());
    path
}

struct Crate {
    modules: BTreeMap<ModPath, Module>,
}

impl Crate {
    /// The module that defines what `path` (absolute) names.
    fn resolve(&self, path: &[String], depth: usize) -> Option<ModPath> {
        if depth > 16 {
            return None;
        }
        let mut at: ModPath = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let mut child = at.clone();
            child.push(segment.clone());
            if self.modules.contains_key(&child) {
                at = child;
                continue;
            }
            if let Some(target) = self.modules.get(&at).and_then(|m| m.reexports.get(segment)) {
                let mut full = target.clone();
                full.extend(path[i + 1..].iter().cloned());
                return self.resolve(&full, depth + 1).or(Some(at));
            }
            return Some(at);
        }
        Some(at)
    }
}

/// Collects the crate paths a module's non-test code names.
struct Paths<'a> {
    at: &'a ModPath,
    found: Vec<ModPath>,
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => {
                if m.content.is_none() {
                    return; // a `mod x;` declaration: structure
                }
                &m.attrs
            }
            syn::Item::Use(u) => {
                if !matches!(u.vis, syn::Visibility::Inherited) || is_test_only(&u.attrs) {
                    return; // re-exports are followed, not counted
                }
                let mut flat = Vec::new();
                flatten(&u.tree, &mut Vec::new(), &mut flat);
                for (_, path) in flat {
                    if let Some(abs) = absolute(self.at, &path) {
                        self.found.push(abs);
                    }
                }
                return;
            }
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Trait(t) => &t.attrs,
            syn::Item::Type(t) => &t.attrs,
            syn::Item::Macro(m) => &m.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        // Attribute macros (`#[utoipa::path(... body = super::x::T)]`) hold
        // paths as bare tokens.
        if let syn::Meta::List(list) = &attr.meta {
            self.paths_in_tokens(list.tokens.clone());
        }
        syn::visit::visit_attribute(self, attr);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(abs) = absolute(self.at, &segments) {
            self.found.push(abs);
        }
        syn::visit::visit_path(self, path);
    }
}

impl Paths<'_> {
    /// The `crate::`/`super::`/`self::` paths in a token stream.
    fn paths_in_tokens(&mut self, tokens: proc_macro2::TokenStream) {
        let mut chain: Vec<String> = Vec::new();
        let mut colons = 0;
        let flush = |chain: &mut Vec<String>, found: &mut Vec<ModPath>| {
            if let Some(abs) = absolute(self.at, chain) {
                found.push(abs);
            }
            chain.clear();
        };
        for token in tokens {
            match token {
                proc_macro2::TokenTree::Ident(ident) => {
                    let ident = ident.to_string();
                    if colons == 2 && !chain.is_empty() {
                        chain.push(ident);
                    } else {
                        flush(&mut chain, &mut self.found);
                        if matches!(ident.as_str(), "crate" | "super" | "self") {
                            chain.push(ident);
                        }
                    }
                    colons = 0;
                }
                proc_macro2::TokenTree::Punct(p) if p.as_char() == ':' => colons += 1,
                proc_macro2::TokenTree::Group(group) => {
                    flush(&mut chain, &mut self.found);
                    colons = 0;
                    self.paths_in_tokens(group.stream());
                }
                _ => {
                    flush(&mut chain, &mut self.found);
                    colons = 0;
                }
            }
        }
        flush(&mut chain, &mut self.found);
    }
}

fn load(src: &Path) -> Crate {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let paths: BTreeSet<ModPath> = files.iter().filter_map(|f| module_path(src, f)).collect();
    MODULES.with(|m| *m.borrow_mut() = paths);
    let mut modules = BTreeMap::new();
    for file in files {
        let Some(path) = module_path(src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("readable source");
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut reexports = BTreeMap::new();
        for item in &ast.items {
            if let syn::Item::Use(u) = item
                && !matches!(u.vis, syn::Visibility::Inherited)
            {
                let mut flat = Vec::new();
                flatten(&u.tree, &mut Vec::new(), &mut flat);
                for (name, target) in flat {
                    if let Some(abs) = absolute(&path, &target) {
                        reexports.insert(name, abs);
                    }
                }
            }
        }
        modules.insert(
            path,
            Module {
                file,
                ast,
                reexports,
            },
        );
    }
    Crate { modules }
}

/// Each module's dependencies, with a reference that shows each edge.
fn dependencies(krate: &Crate) -> BTreeMap<ModPath, BTreeMap<ModPath, String>> {
    let mut graph = BTreeMap::new();
    for (at, module) in &krate.modules {
        let mut paths = Paths {
            at,
            found: Vec::new(),
        };
        paths.visit_file(&module.ast);
        let edges: &mut BTreeMap<ModPath, String> = graph.entry(at.clone()).or_default();
        for path in paths.found {
            let Some(target) = krate.resolve(&path, 0) else {
                continue;
            };
            // A module's own items, its ancestors' facades, and its own
            // children (a parent composes them) are no edge.
            if target == *at
                || target.starts_with(at)
                || at.starts_with(&target) && !krate.defines_items(&target)
            {
                continue;
            }
            edges.entry(target).or_insert_with(|| {
                format!("{} names `{}`", module.file.display(), path.join("::"))
            });
        }
    }
    graph
}

impl Crate {
    /// Whether a module holds code beyond `mod` declarations and `use`s.
    fn defines_items(&self, path: &ModPath) -> bool {
        self.modules.get(path).is_some_and(|m| {
            m.ast
                .items
                .iter()
                .any(|i| !matches!(i, syn::Item::Mod(_) | syn::Item::Use(_)))
        })
    }
}

/// Tarjan's strongly connected components of two or more nodes.
fn cycles(graph: &BTreeMap<ModPath, BTreeMap<ModPath, String>>) -> Vec<Vec<ModPath>> {
    struct Tarjan<'g> {
        graph: &'g BTreeMap<ModPath, BTreeMap<ModPath, String>>,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on_stack: BTreeSet<&'g ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g ModPath) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|e| e.keys()) {
                let Some((w, _)) = self.graph.get_key_value(w) else {
                    continue;
                };
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !tarjan.index.contains_key(v) {
            tarjan.visit(v);
        }
    }
    tarjan.out
}

fn name(path: &ModPath) -> String {
    if path.is_empty() {
        "crate".into()
    } else {
        path.join("::")
    }
}

#[test]
fn the_host_modules_form_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let krate = load(&src);
    assert!(krate.modules.len() > 20, "found the host's modules");
    let graph = dependencies(&krate);
    let found = cycles(&graph);
    let report: Vec<String> = found
        .iter()
        .map(|component| {
            let members: BTreeSet<&ModPath> = component.iter().collect();
            let mut lines = vec![format!(
                "cycle: {}",
                component.iter().map(name).collect::<Vec<_>>().join(", ")
            )];
            for from in component {
                for (to, why) in &graph[from] {
                    if members.contains(to) {
                        lines.push(format!("  {} -> {}: {why}", name(from), name(to)));
                    }
                }
            }
            lines.join("\n")
        })
        .collect();
    assert!(
        report.is_empty(),
        "{} import cycle(s):\n{}",
        report.len(),
        report.join("\n")
    );
}
