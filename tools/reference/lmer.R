# Reference values for pyglmm.lmer from lme4 (run from the repository root):
#   Rscript tools/reference/lmer.R
# Writes one JSON file per model to tests/fixtures/lmer/<name>.json.
suppressMessages({library(lme4); library(jsonlite)})
d <- "src/pyglmm/datasets/data/"
out <- "tests/fixtures/lmer/"
dir.create(out, showWarnings = FALSE, recursive = TRUE)

ss <- read.csv(paste0(d, "sleepstudy.csv"))
ss$Subject <- factor(ss$Subject, levels = sort(unique(ss$Subject)))
dy <- read.csv(paste0(d, "Dyestuff.csv")); dy$Batch <- factor(dy$Batch, levels = LETTERS[1:6])
M <- read.csv(paste0(d, "Machines.csv"))
M$Worker <- factor(M$Worker, levels = 1:6); M$Machine <- factor(M$Machine, levels = c("A", "B", "C"))
cb <- read.csv(paste0(d, "cbpp.csv"))
cb$herd <- factor(cb$herd, levels = 1:15); cb$period <- factor(cb$period, levels = 1:4)
B <- read.csv(paste0(d, "Bond.csv"))
B$Ingot <- factor(B$Ingot, levels = 1:7); B$Metal <- factor(B$Metal, levels = c("c", "i", "n"))

nn <- function(x) { x <- as.numeric(x); x }

ref <- function(name, formula, data, dataset, REML = TRUE, weights = NULL, offset = NULL,
                newdata = NULL, thetas = list(), notes = "") {
  env <- environment()
  t0 <- proc.time()[["elapsed"]]
  m <- eval(substitute(lmer(formula, data = data, REML = REML, weights = weights, offset = offset)))
  elapsed <- proc.time()[["elapsed"]] - t0
  devf <- eval(substitute(lmer(formula, data = data, REML = REML, weights = weights, offset = offset,
                               devFunOnly = TRUE)))
  vc <- as.data.frame(VarCorr(m))
  re <- as.data.frame(ranef(m, condVar = TRUE))
  V <- as.matrix(vcov(m))
  s <- summary(m)
  res <- list(
    name = name, dataset = dataset, formula = deparse(formula, width.cutoff = 500L), reml = REML,
    notes = notes,
    objective = if (REML) REMLcrit(m) else deviance(m),
    loglik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
    aic = AIC(m), bic = BIC(m), nobs = nobs(m),
    fixef = as.list(fixef(m)), fixef_names = names(fixef(m)),
    se = nn(sqrt(diag(V))), vcov = unname(V),
    sigma = sigma(m), theta = nn(getME(m, "theta")), theta_names = names(getME(m, "theta")),
    varcorr = list(group = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor),
    ranef = list(grpvar = as.character(re$grpvar), term = as.character(re$term),
                 grp = as.character(re$grp), condval = re$condval, condsd = re$condsd),
    fitted = nn(fitted(m)),
    resid_response = nn(residuals(m, type = "response")),
    resid_pearson = nn(residuals(m, type = "pearson")),
    resid_scaled = nn(residuals(m, scaled = TRUE)),
    scaled_resid_quantiles = nn(quantile(residuals(m, scaled = TRUE))),
    singular = isSingular(m),
    feval = m@optinfo$feval,
    conv_messages = as.character(unlist(m@optinfo$conv$lme4$messages)),
    lme4_seconds = elapsed,
    cnms = lapply(getME(m, "cnms"), as.character),
    cnms_groups = names(getME(m, "cnms")),
    summary = paste(capture.output(print(s, correlation = TRUE)), collapse = "\n"),
    devfun_theta = lapply(thetas, nn),
    devfun_value = sapply(thetas, function(th) devf(th))
  )
  if (res$nobs > 5000) {  # keep the fixture small: the first 200 rows of the per-row vectors
    for (k in c("fitted", "resid_response", "resid_pearson", "resid_scaled")) res[[k]] <- res[[k]][1:200]
  }
  if (!is.null(newdata)) {
    res$newdata <- as.list(newdata)
    res$predict_full <- nn(predict(m, newdata = newdata, allow.new.levels = TRUE))
    res$predict_fixed <- nn(predict(m, newdata = newdata, re.form = NA))
  }
  writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE),
             paste0(out, name, ".json"))
  cat(name, ": objective", res$objective, " feval", res$feval, " time", elapsed, "\n")
}

nd <- data.frame(Days = c(0, 5, 9.5, 3), Subject = c("308", "372", "999", "999"))
ref("sleepstudy_reml", Reaction ~ Days + (Days | Subject), ss, "sleepstudy",
    newdata = nd, thetas = list(c(1, 0, 1), c(0.5, 0.1, 0.3), c(0, 0, 0)))
ref("sleepstudy_ml", Reaction ~ Days + (Days | Subject), ss, "sleepstudy", REML = FALSE,
    thetas = list(c(1, 0, 1), c(0.5, 0.1, 0.3)))
ref("sleepstudy_uncorr_reml", Reaction ~ Days + (Days || Subject), ss, "sleepstudy",
    thetas = list(c(1, 1), c(0.5, 0.2)))
ref("sleepstudy_uncorr_ml", Reaction ~ Days + (Days || Subject), ss, "sleepstudy", REML = FALSE)
ref("dyestuff_reml", Yield ~ 1 + (1 | Batch), dy, "Dyestuff", thetas = list(1, 0.5, 0))
ref("dyestuff_ml", Yield ~ 1 + (1 | Batch), dy, "Dyestuff", REML = FALSE)
ref("machines_interaction", score ~ Machine + (1 | Worker) + (1 | Worker:Machine), M, "Machines",
    thetas = list(c(1, 1), c(0.3, 2)))
ref("machines_nested", score ~ Machine + (1 | Worker/Machine), M, "Machines",
    notes = "(1|Worker/Machine) expands to (1|Worker:Machine) + (1|Worker)")
ref("machines_crossed", score ~ 1 + (1 | Worker) + (1 | Machine), M, "Machines",
    thetas = list(c(1, 1), c(2, 0.5)))
ref("machines_vector_factor", score ~ Machine + (0 + Machine | Worker), M, "Machines",
    notes = "a factor inside the bar: 3x3 covariance per Worker")
ref("bond_reml", pressure ~ Metal + (1 | Ingot), B, "Bond")
ref("cbpp_singular", incidence ~ period + (1 | herd), cb, "cbpp",
    notes = "boundary fit: theta = 0")
ref("cbpp_weighted", incidence / size ~ period + (1 | herd), cb, "cbpp", weights = cb$size,
    notes = "prior weights = size", thetas = list(1, 0.2))
ref("sleepstudy_offset", Reaction ~ Days + (Days | Subject), ss, "sleepstudy",
    offset = 10 * ss$Days, notes = "offset = 10 * Days")

if (!identical(Sys.getenv("SKIP_INSTEVAL"), "1")) {
  ie <- read.csv(gzfile(paste0(d, "InstEval.csv.gz")))
  for (v in c("s", "d", "dept", "service", "studage", "lectage"))
    ie[[v]] <- factor(ie[[v]], levels = sort(unique(ie[[v]])))
  ref("insteval_reml", y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept), ie, "InstEval",
      thetas = list(c(1, 1, 1), c(0.3, 0.5, 0.1)))
}
