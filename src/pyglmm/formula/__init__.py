"""The formula layer: R/lme4 model formulas to model matrices."""
