import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dagLayers } from './dag-layout.js';

test('layers a DAG by its longest chain of needs, keeping definition order within a layer', () => {
  const steps = [
    { id: 'plan' },
    { id: 'lint', needs: ['plan'] },
    { id: 'test', needs: ['plan'] },
    { id: 'review', needs: ['plan', 'lint', 'test'] },
    { id: 'notify', needs: ['review'] },
    { id: 'side' },
  ];
  assert.deepEqual(dagLayers(steps), [['plan', 'side'], ['lint', 'test'], ['review'], ['notify']]);
});

test('ignores unknown needs and survives a cycle', () => {
  assert.deepEqual(dagLayers([{ id: 'a', needs: ['ghost'] }, { id: 'b', needs: ['a'] }]), [['a'], ['b']]);
  const layers = dagLayers([{ id: 'a', needs: ['b'] }, { id: 'b', needs: ['a'] }]);
  assert.deepEqual(layers.flat().sort(), ['a', 'b']);
});

test('runs in a page as its own source text (no imports or helpers)', () => {
  const fn = new Function(`return (${dagLayers.toString()})`)() as typeof dagLayers;
  assert.deepEqual(fn([{ id: 'x' }, { id: 'y', needs: ['x'] }]), [['x'], ['y']]);
});
