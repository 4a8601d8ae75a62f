'use strict';
// plotly.js with only the trace types the NNI web UI draws (charts.js): scatter (always in
// core), scattergl (the default-metric chart above 3,000 points), bar (durations) and parcoords
// (hyper-parameters). No calendars component: the UI plots plain numbers and epoch times.
var Plotly = require('plotly.js/lib/core');

Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/scattergl'),
    require('plotly.js/lib/parcoords'),
]);

module.exports = Plotly;
