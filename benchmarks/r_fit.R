# Fit one benchmark case in R and time only the fit call (not start-up, not reading the CSV).
# Usage: Rscript benchmarks/r_fit.R spec.json
# spec: csv, factors {col: [levels in order]}, kind (glm | lmer | glmer), formula, family,
#       reml, reps, warmup, budget (s; a slower repetition ends the series), out (JSON path).
suppressPackageStartupMessages({
  library(jsonlite)
  library(lme4)
})

args <- commandArgs(trailingOnly = TRUE)
spec <- fromJSON(args[1], simplifyVector = TRUE)
d <- read.csv(spec$csv, stringsAsFactors = FALSE)
for (col in names(spec$factors)) {
  d[[col]] <- factor(as.character(d[[col]]), levels = as.character(spec$factors[[col]]))
}
form <- as.formula(spec$formula)
fam <- switch(spec$family,
  gaussian = gaussian(), poisson = poisson(), binomial = binomial(),
  Gamma = Gamma(link = "log"), stop("unknown family ", spec$family)
)

fit_once <- function() {
  switch(spec$kind,
    glm = glm(form, data = d, family = fam), # R defaults: epsilon = 1e-8, maxit = 25
    lmer = lmer(form, data = d, REML = isTRUE(spec$reml)),
    glmer = glmer(form, data = d, family = fam),
    stop("unknown kind ", spec$kind)
  )
}

notes <- character(0)
wh <- function(w) {
  notes <<- unique(c(notes, conditionMessage(w)))
  invokeRestart("muffleWarning")
}
if (isTRUE(spec$warmup)) withCallingHandlers(fit_once(), warning = wh)
times <- numeric(0)
for (i in seq_len(spec$reps)) {
  gc(verbose = FALSE)
  t0 <- proc.time()[["elapsed"]]
  m <- withCallingHandlers(fit_once(), warning = wh)
  times <- c(times, proc.time()[["elapsed"]] - t0)
  if (times[length(times)] > spec$budget && i < spec$reps) {
    notes <- c(notes, sprintf("%d rep(s): slower than %g s", i, spec$budget))
    break
  }
}

if (spec$kind == "glm") {
  coef <- unname(coef(m))
  nm <- names(coef(m))
  objective <- deviance(m)
  feval <- m$iter
} else {
  coef <- unname(fixef(m))
  nm <- names(fixef(m))
  if (spec$kind == "lmer") {
    objective <- if (isREML(m)) REMLcrit(m) else deviance(m)
  } else {
    objective <- -2 * as.numeric(logLik(m))
  }
  feval <- m@optinfo$feval
}
out <- list(
  times = times, coef = coef, names = nm, objective = objective, feval = feval,
  note = paste(notes, collapse = "; ")
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE), spec$out)
