// Package bench turns repeated runs of a pipeline into measurements a
// performance engineer can trust: per task and phase (queue wait, image,
// container create/start, input staging, execution, output collection,
// teardown) the sample statistics, GPU utilisation, comparisons against a
// baseline with bootstrap confidence intervals, and self-contained HTML/SVG
// reports with a timeline of a run. It works on the run history's records
// (runner.TaskRecord, runner.AttemptRecord) and imports nothing heavier.
package bench
