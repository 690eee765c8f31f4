import { describeEveryPage } from '../helpers/every-page.js';

// Split from every-page-europe.test.ts so the two run side by side.
describeEveryPage(['en', 'ja', 'zh-Hant', 'ko']);
