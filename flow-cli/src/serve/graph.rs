//! A workflow's graph, read back from the Mermaid `flowchart` the store recorded (the one
//! `#[workflow]` generates), laid out in layers and drawn as SVG, with each step marked as
//! done, current, waiting, failed or not reached.

use maud::{Markup, html};
use serde::Serialize;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NodeKind {
    Entry,
    Step,
    Workers,
    Exit,
}

/// Where a run stands at a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mark {
    /// Not reached (or not known).
    None,
    /// Completed: a checkpoint after it is stored.
    Done,
    /// Runs now, or runs next when the run goes on.
    Current,
    /// Waits for an event.
    Waiting,
    /// Failed and set the run aside.
    Failed,
}

/// A step of the graph.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) label: String,
    pub(crate) kind: NodeKind,
    pub(crate) mark: Mark,
}

/// What an edge is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EdgeKind {
    /// The step after (a fan-out's branch, a route's arm).
    Next,
    /// A loop's way back (dotted).
    Back,
    /// A step reads an earlier step's output (`#[from]`).
    Data,
}

/// An edge between two steps.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Edge {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) label: Option<String>,
    pub(crate) kind: EdgeKind,
}

/// A workflow's steps and edges (tools are left out: the run page lists the calls).
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) edges: Vec<Edge>,
}

/// The label between `|…|` of an edge, without quotes.
fn edge_label(text: &str) -> Option<String> {
    let inner = text.strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.trim_matches('"').to_owned())
}

fn is_id_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Graph {
    /// Reads the graph of a Mermaid `flowchart` as `#[workflow]` writes it; lines it does not
    /// know are skipped.
    pub(crate) fn parse(mermaid: &str) -> Self {
        let mut graph = Self::default();
        let mut tools = Vec::new();
        for line in mermaid.lines().skip(1).map(str::trim) {
            let arrows = [
                (" -.-o", EdgeKind::Data),
                (" -.->", EdgeKind::Back),
                (" -->", EdgeKind::Next),
            ];
            if let Some((at, arrow, kind)) = arrows
                .iter()
                .find_map(|(arrow, kind)| line.find(arrow).map(|at| (at, *arrow, *kind)))
            {
                let from = line[..at].trim().to_owned();
                let rest = line[at + arrow.len()..].trim();
                let (label, to) = match rest.rfind('|') {
                    Some(end) if rest.starts_with('|') => {
                        (edge_label(&rest[..=end]), rest[end + 1..].trim())
                    }
                    _ => (None, rest),
                };
                graph.edges.push(Edge {
                    from,
                    to: to.to_owned(),
                    label,
                    kind,
                });
                continue;
            }
            if line.contains(" -.- ") {
                continue; // a tool's link
            }
            let id: String = line.chars().take_while(|c| is_id_char(*c)).collect();
            let shape = &line[id.len()..];
            if id.is_empty() || shape.is_empty() {
                continue;
            }
            if shape.starts_with("{{") {
                tools.push(id);
                continue;
            }
            let kind = if shape.starts_with("([") {
                NodeKind::Entry
            } else if shape.starts_with("(((") {
                NodeKind::Exit
            } else if shape.starts_with("[[") {
                NodeKind::Workers
            } else {
                NodeKind::Step
            };
            let label = match (shape.find('"'), shape.rfind('"')) {
                // The macro marks waits with emoji, which a machine without an emoji font
                // draws as boxes: words instead.
                (Some(a), Some(b)) if b > a => shape[a + 1..b]
                    .replace(" ⏳ ", " · event ")
                    .replace(" 💤", " · sleeps"),
                _ => id.clone(),
            };
            graph.nodes.push(Node {
                id,
                label,
                kind,
                mark: Mark::None,
            });
        }
        graph
            .edges
            .retain(|e| !tools.contains(&e.from) && !tools.contains(&e.to));
        graph
    }

    /// The steps that come right after `step` (the entry after the start checkpoint, an empty
    /// step name), when the graph says which: one next step, or every branch of a fan-out.
    /// A route's arms (labelled) leave it open: the step decides at run time.
    pub(crate) fn next_of(&self, step: &str) -> Vec<String> {
        if step.is_empty() {
            return self
                .nodes
                .iter()
                .filter(|n| n.kind == NodeKind::Entry)
                .map(|n| n.id.clone())
                .collect();
        }
        let next: Vec<&Edge> = self
            .edges
            .iter()
            .filter(|e| e.from == step && e.kind != EdgeKind::Data)
            .collect();
        if next.iter().any(|e| e.label.is_some()) {
            return Vec::new();
        }
        next.iter().map(|e| e.to.clone()).collect()
    }

    /// The steps a run runs now, or next when it goes on, after its latest checkpoint (after
    /// `step`), given the steps it has `done`: the next steps, except that a join whose
    /// fan-out branches are not all done leaves those branches current.
    pub(crate) fn current_after(&self, step: &str, done: &[&str]) -> Vec<String> {
        let mut current = Vec::new();
        for next in self.next_of(step) {
            let pending: Vec<String> = self
                .branches_into(&next)
                .into_iter()
                .filter(|b| !done.contains(&b.as_str()))
                .collect();
            if pending.is_empty() {
                current.push(next);
            } else {
                current.extend(pending);
            }
        }
        current.dedup();
        current
    }

    /// The fan-out branches `join` waits for: when the steps with a plain edge into it are
    /// all branches of one fork (a step with plain edges to each of them), those steps;
    /// otherwise (one step before it, or routes converging on it) none.
    fn branches_into(&self, join: &str) -> Vec<String> {
        let plain = |e: &&Edge| e.kind == EdgeKind::Next && e.label.is_none();
        let before: Vec<&str> = self
            .edges
            .iter()
            .filter(plain)
            .filter(|e| e.to == join)
            .map(|e| e.from.as_str())
            .collect();
        if before.len() < 2 {
            return Vec::new();
        }
        let forks_to_all = |fork: &str| {
            let after: Vec<&str> = self
                .edges
                .iter()
                .filter(plain)
                .filter(|e| e.from == fork)
                .map(|e| e.to.as_str())
                .collect();
            before.iter().all(|b| after.contains(b))
        };
        if self
            .edges
            .iter()
            .filter(plain)
            .any(|e| forks_to_all(&e.from))
        {
            before.into_iter().map(str::to_owned).collect()
        } else {
            Vec::new()
        }
    }

    /// Sets the node of `step` to `mark` (a later mark wins).
    pub(crate) fn mark(&mut self, step: &str, mark: Mark) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.id == step) {
            node.mark = mark;
        }
    }

    /// Each node's layer: the longest path of `Next` edges from an entry.
    fn layers(&self) -> Vec<usize> {
        let index = |id: &str| self.nodes.iter().position(|n| n.id == id);
        let mut layer = vec![0usize; self.nodes.len()];
        // Bellman-Ford style: at most one pass per node, so a cycle cannot loop forever.
        for _ in 0..self.nodes.len() {
            let mut changed = false;
            for edge in self.edges.iter().filter(|e| e.kind == EdgeKind::Next) {
                if let (Some(a), Some(b)) = (index(&edge.from), index(&edge.to))
                    && layer[b] < layer[a] + 1
                    && layer[a] + 1 < self.nodes.len().max(1)
                {
                    layer[b] = layer[a] + 1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        layer
    }

    /// The graph as an inline SVG.
    #[allow(
        clippy::cast_precision_loss,
        reason = "positions of a few dozen nodes, far below f64's exact range"
    )]
    pub(crate) fn svg(&self) -> Markup {
        const ROW: f64 = 84.0;
        const HEIGHT: f64 = 36.0;
        const GAP: f64 = 28.0;
        const MARGIN: f64 = 24.0;
        let layers = self.layers();
        let rows = layers.iter().max().map_or(0, |m| m + 1);
        let width_of = |n: &Node| n.label.chars().count() as f64 * 8.0 + 32.0;
        // x of each node: its row's nodes side by side, each row centred.
        let row_widths: Vec<f64> = (0..rows)
            .map(|r| {
                let in_row: Vec<&Node> = self
                    .nodes
                    .iter()
                    .zip(&layers)
                    .filter(|(_, l)| **l == r)
                    .map(|(n, _)| n)
                    .collect();
                in_row.iter().map(|n| width_of(n)).sum::<f64>()
                    + GAP * in_row.len().saturating_sub(1) as f64
            })
            .collect();
        let widest = row_widths.iter().copied().fold(120.0, f64::max);
        // Room on the right for the curves of loops and data edges.
        let curves = if self.edges.iter().any(|e| e.kind != EdgeKind::Next) {
            140.0
        } else {
            0.0
        };
        let total_width = widest + 2.0 * MARGIN + curves;
        let total_height = rows as f64 * ROW + 2.0 * MARGIN - (ROW - HEIGHT);
        let mut next_x: Vec<f64> = row_widths
            .iter()
            .map(|w| MARGIN + (widest - w) / 2.0)
            .collect();
        let mut boxes = Vec::with_capacity(self.nodes.len());
        for (node, &layer) in self.nodes.iter().zip(&layers) {
            let w = width_of(node);
            let x = next_x[layer];
            next_x[layer] += w + GAP;
            boxes.push((x, MARGIN + layer as f64 * ROW, w));
        }
        let at = |id: &str| self.nodes.iter().position(|n| n.id == id).map(|i| boxes[i]);
        let mark_class = |m: Mark| match m {
            Mark::None => "todo",
            Mark::Done => "done",
            Mark::Current => "current",
            Mark::Waiting => "waiting",
            Mark::Failed => "failed",
        };
        html! {
            svg id="graph" class="graph" role="img"
                width=(total_width) height=(total_height)
                viewBox={ "0 0 " (total_width) " " (total_height) } {
                title { "The workflow's steps; the run's progress marked" }
                defs {
                    marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7"
                        markerHeight="7" orient="auto-start-reverse" {
                        path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" {}
                    }
                }
                @for edge in &self.edges {
                    @if let (Some((x1, y1, w1)), Some((x2, y2, w2))) = (at(&edge.from), at(&edge.to)) {
                        @match edge.kind {
                            EdgeKind::Next => {
                                @let (sx, sy, ex, ey) = (x1 + w1 / 2.0, y1 + HEIGHT, x2 + w2 / 2.0, y2);
                                path class="edge next" marker-end="url(#arrow)"
                                    d={ "M " (sx) " " (sy) " C " (sx) " " (f64::midpoint(sy, ey)) " " (ex) " " (f64::midpoint(sy, ey)) " " (ex) " " (ey) } {}
                                @if let Some(label) = &edge.label {
                                    text class="edge-label" x=(f64::midpoint(sx, ex) + 4.0) y=(f64::midpoint(sy, ey) - 2.0) { (label) }
                                }
                            }
                            EdgeKind::Back | EdgeKind::Data => {
                                @let (sx, sy, ex, ey) = (x1 + w1, y1 + HEIGHT / 2.0, x2 + w2, y2 + HEIGHT / 2.0);
                                @let bulge = 50.0 + (sy - ey).abs() / 4.0;
                                @let class = if edge.kind == EdgeKind::Back { "edge back" } else { "edge data" };
                                path class=(class) marker-end=[(edge.kind == EdgeKind::Back).then_some("url(#arrow)")]
                                    d={ "M " (sx) " " (sy) " C " (sx + bulge) " " (sy) " " (ex + bulge) " " (ey) " " (ex) " " (ey) } {}
                                @if let Some(label) = &edge.label {
                                    text class="edge-label" x=(sx.max(ex) + bulge * 0.75 + 4.0) y=(f64::midpoint(sy, ey)) { (label) }
                                }
                            }
                        }
                    }
                }
                @for (node, (x, y, w)) in self.nodes.iter().zip(&boxes) {
                    g class={ "node " (mark_class(node.mark)) } data-step=(node.id) {
                        title { (node.id) ": " (mark_class(node.mark)) }
                        @let rx = match node.kind { NodeKind::Entry => HEIGHT / 2.0, NodeKind::Exit => 12.0, _ => 4.0 };
                        rect x=(x) y=(y) width=(w) height=(HEIGHT) rx=(rx) {}
                        @if node.kind == NodeKind::Exit {
                            rect class="inner" x=(x + 3.0) y=(y + 3.0) width=(w - 6.0) height=(HEIGHT - 6.0) rx=(rx - 3.0) {}
                        }
                        @if node.kind == NodeKind::Workers {
                            line class="inner" x1=(x + 8.0) y1=(y) x2=(x + 8.0) y2=(y + HEIGHT) {}
                            line class="inner" x1=(x + w - 8.0) y1=(y) x2=(x + w - 8.0) y2=(y + HEIGHT) {}
                        }
                        text x=(x + w / 2.0) y=(y + HEIGHT / 2.0 + 5.0) text-anchor="middle" { (node.label) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOP: &str = "flowchart TD\n    draft([\"draft\"])\n    review[\"review ⏳ Note\"]\n    accept(((\"accept\")))\n    give_up(((\"give_up\")))\n    draft --> review\n    review -.->|\"Revise (max 3)\"| draft\n    review -->|\"Revise exhausted\"| give_up\n    review -->|Accept| accept\n    tool__Model{{\"Model\"}}\n    draft -.- tool__Model\n";

    #[test]
    fn reads_the_graph_the_macro_writes() {
        let g = Graph::parse(LOOP);
        let nodes: Vec<(&str, &str, NodeKind)> = g
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), n.label.as_str(), n.kind))
            .collect();
        assert_eq!(
            nodes,
            [
                ("draft", "draft", NodeKind::Entry),
                ("review", "review · event Note", NodeKind::Step),
                ("accept", "accept", NodeKind::Exit),
                ("give_up", "give_up", NodeKind::Exit)
            ]
        );
        let edges: Vec<(&str, &str, Option<&str>, EdgeKind)> = g
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.label.as_deref(), e.kind))
            .collect();
        assert_eq!(
            edges,
            [
                ("draft", "review", None, EdgeKind::Next),
                ("review", "draft", Some("Revise (max 3)"), EdgeKind::Back),
                (
                    "review",
                    "give_up",
                    Some("Revise exhausted"),
                    EdgeKind::Next
                ),
                ("review", "accept", Some("Accept"), EdgeKind::Next),
            ]
        );
        assert_eq!(g.layers(), [0, 1, 2, 2]);
        assert_eq!(g.next_of(""), ["draft"]);
        assert_eq!(g.next_of("draft"), ["review"]);
        assert!(
            g.next_of("review").is_empty(),
            "a route decides at run time"
        );
    }

    const FAN_OUT: &str = "flowchart TD\n    plan([\"plan\"])\n    web[\"web\"]\n    papers[[\"papers ×4\"]]\n    summarize(((\"summarize\")))\n    plan --> web\n    plan --> papers\n    web --> summarize\n    papers --> summarize\n";

    const CONVERGING: &str = "flowchart TD\n    validate([\"validate\"])\n    intake[\"intake\"]\n    order_status[\"order_status\"]\n    escalate[\"escalate\"]\n    draft(((\"draft\")))\n    validate --> intake\n    intake -->|OrderStatus| order_status\n    intake -->|Escalate| escalate\n    order_status --> draft\n    escalate --> draft\n    validate -.-o|\"ticket\"| draft\n";

    #[test]
    fn a_fan_out_keeps_its_pending_branches_current() {
        let g = Graph::parse(FAN_OUT);
        assert_eq!(g.nodes[2].kind, NodeKind::Workers);
        assert_eq!(g.current_after("", &[]), ["plan"]);
        assert_eq!(g.current_after("plan", &["plan"]), ["web", "papers"]);
        assert_eq!(g.current_after("web", &["plan", "web"]), ["papers"]);
        assert_eq!(
            g.current_after("papers", &["plan", "web", "papers"]),
            ["summarize"]
        );
    }

    #[test]
    fn converging_routes_are_not_a_join() {
        let g = Graph::parse(CONVERGING);
        assert!(
            g.current_after("intake", &["validate", "intake"])
                .is_empty()
        );
        assert_eq!(
            g.current_after("order_status", &["validate", "intake", "order_status"]),
            ["draft"]
        );
        assert_eq!(g.edges.last().map(|e| e.kind), Some(EdgeKind::Data));
    }

    #[test]
    fn draws_every_step_with_its_mark() {
        let mut g = Graph::parse(LOOP);
        g.mark("draft", Mark::Done);
        g.mark("review", Mark::Failed);
        let svg = g.svg().into_string();
        assert!(
            svg.contains(r#"class="node done" data-step="draft""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"class="node failed" data-step="review""#),
            "{svg}"
        );
        assert_eq!(svg.matches("class=\"edge ").count(), 4);
    }

    #[test]
    fn a_cycle_of_plain_edges_still_lays_out() {
        let g =
            Graph::parse("flowchart TD\n    a([\"a\"])\n    b[\"b\"]\n    a --> b\n    b --> a\n");
        assert_eq!(g.layers().len(), 2);
        let _ = g.svg();
    }
}
