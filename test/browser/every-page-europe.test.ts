import { describeEveryPage } from '../helpers/every-page.js';

// Split from every-page-asia.test.ts so the two run side by side.
describeEveryPage(['fr', 'de', 'es']);
