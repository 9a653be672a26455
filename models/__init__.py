"""Networks used by the pipeline: feature extractors and landmark detectors."""
