// The smallest useful image: a static busybox and nothing else. For tests.
import { defineRecipe } from '../lib/recipe.ts';
import { busyboxLayer } from './layers.ts';

export default defineRecipe({
  name: 'busybox',
  layers: [busyboxLayer],
  config: {
    cmd: ['sh'],
    workingDir: '/',
    labels: { 'org.opencontainers.image.title': 'busybox', 'org.opencontainers.image.description': 'busybox-static from Debian, for tests' },
  },
});
