// The report's stylesheet, inlined into the page: system fonts only (nothing is fetched), a light card layout,
// and the classes that charts.ts and heatmap.ts emit (.chart, .grid, .tick, .tok, …).

export const REPORT_CSS = `
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f6f7f9; --card: #fff; --accent: #0072b2; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 22px; }
h1 { font-size: 22px; margin: 0 0 2px; font-weight: 650; }
h2 { font-size: 17px; margin: 30px 0 12px; font-weight: 650; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
.muted { color: var(--muted); }
header > p { margin: 0 0 10px; font-size: 13px; word-break: break-all; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; font-size: 13px; }
nav a:hover { text-decoration: underline; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0 0; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 104px; }
.tile-value { font-size: 19px; font-weight: 600; font-variant-numeric: tabular-nums; }
.tile-label { font-size: 12px; color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(500px, 1fr)); gap: 14px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; margin: 0;
  box-shadow: 0 1px 2px rgba(16, 24, 40, 0.04); }
.scroll { overflow: auto; max-height: 520px; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); column-gap: 28px; align-items: start; }
svg.chart { width: 100%; height: auto; display: block; font-family: inherit; }
svg.chart .chart-title { font-size: 14px; font-weight: 600; fill: var(--fg); }
svg.chart .tick { font-size: 11px; fill: var(--muted); font-variant-numeric: tabular-nums; }
svg.chart .axis-label { font-size: 12px; fill: var(--muted); }
svg.chart .legend { font-size: 12px; fill: var(--fg); }
svg.chart .point-label { font-size: 11px; fill: var(--fg); paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
svg.chart .grid { stroke: #eef0f3; stroke-width: 1; }
svg.chart .axis { stroke: #98a2b3; stroke-width: 1; }
svg.chart circle:hover { stroke-width: 3; }
table.kv { border-collapse: collapse; width: 100%; font-size: 13px; }
table.kv th, table.kv td { text-align: left; padding: 4px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.kv th { font-weight: 500; color: var(--muted); white-space: nowrap; }
table.kv tbody th, table.config th { width: 1%; padding-right: 28px; }
table.kv td { font-variant-numeric: tabular-nums; word-break: break-word; }
table.kv thead th { color: var(--fg); font-weight: 600; }
table.kv.frontier th, table.kv.frontier td { padding: 4px 6px; }
table.kv.frontier td { white-space: nowrap; word-break: normal; } /* numbers unbroken: up to 9 columns beside the chart */
table.config td { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
details { margin-top: 12px; }
summary { cursor: pointer; color: var(--accent); font-size: 13px; }
.heat-legend { display: flex; align-items: center; gap: 10px; font-size: 12px; margin-bottom: 12px; flex-wrap: wrap; }
.heat-scale { width: 220px; height: 12px; border: 1px solid var(--line); border-radius: 3px; }
.seq { margin: 0 0 14px; }
.seq-label { font-size: 12px; font-weight: 600; margin-bottom: 4px; }
.tokens { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; line-height: 1.9;
  white-space: pre-wrap; word-break: break-word; }
.tok { border-radius: 3px; padding: 1px 0; box-shadow: inset 0 0 0 0.5px rgba(0, 0, 0, 0.08); }
.tok:hover { outline: 2px solid var(--fg); }
footer { padding: 30px 24px 40px; font-size: 12px; }
`;
