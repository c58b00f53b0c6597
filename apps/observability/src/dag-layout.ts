/**
 * The layered layout of a run's DAG, for the dashboard: a step with no
 * `needs` sits in layer 0, any other one layer right of the furthest step it
 * needs. Within a layer, steps keep their definition order.
 *
 * The page embeds this very function (`dagLayers.toString()`), so it is
 * written in plain JavaScript with type annotations only: no imports, no
 * helpers, nothing the browser would lack. A `needs` naming a step that is not
 * listed is ignored, and a cycle (which registration rejects) cannot loop.
 */
export function dagLayers(steps: ReadonlyArray<{ id: string; needs?: readonly string[] | undefined }>): string[][] {
  const byId: Record<string, { id: string; needs?: readonly string[] | undefined }> = {};
  for (const s of steps) byId[s.id] = s;
  const layer: Record<string, number> = {};
  const visiting: Record<string, boolean> = {};
  function depth(id: string): number {
    if (layer[id] !== undefined) return layer[id];
    if (visiting[id]) return 0;
    visiting[id] = true;
    let d = 0;
    const needs = byId[id]?.needs ?? [];
    for (const n of needs) if (byId[n] && n !== id) d = Math.max(d, depth(n) + 1);
    visiting[id] = false;
    layer[id] = d;
    return d;
  }
  const layers: string[][] = [];
  for (const s of steps) {
    const d = depth(s.id);
    while (layers.length <= d) layers.push([]);
    layers[d]!.push(s.id);
  }
  return layers;
}
