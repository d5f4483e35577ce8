# Reference values for pyglmm.inference (LMM tests, LRT, profile/Wald intervals) from
# lme4 / lmerTest / pbkrtest.  Run from the repository root:
#   Rscript tools/reference/lmm_inference.R
# Writes tests/fixtures/lmm_inference/<name>.json.
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)})
d <- "src/pyglmm/datasets/data/"
out <- "tests/fixtures/lmm_inference/"
dir.create(out, showWarnings = FALSE, recursive = TRUE)

ss <- read.csv(paste0(d, "sleepstudy.csv"))
ss$Subject <- factor(ss$Subject, levels = sort(unique(ss$Subject)))
# a between-subject factor for type-III tests with an interaction (levels a, b, c)
ss$grp <- factor(c("a", "b", "c")[(as.integer(ss$Subject) %% 3) + 1], levels = c("a", "b", "c"))
dy <- read.csv(paste0(d, "Dyestuff.csv")); dy$Batch <- factor(dy$Batch, levels = LETTERS[1:6])
M <- read.csv(paste0(d, "Machines.csv"))
M$Worker <- factor(M$Worker, levels = 1:6); M$Machine <- factor(M$Machine, levels = c("A", "B", "C"))

tab <- function(x) {
  x <- as.data.frame(x)
  res <- lapply(x, function(col) as.numeric(col))
  res$rownames <- rownames(x)
  res
}
save <- function(name, res) {
  writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE),
             paste0(out, name, ".json"))
}

tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12))
lmm_tests <- function(name, formula, data, dataset, notes = "") {
  # tight optimizer tolerances so that lme4 reaches the optimum to ~1e-10 (its default
  # stops ~1e-7 short on sleep_grp, which moves p-values by ~1e-3 relative)
  m <- eval(substitute(lmerTest::lmer(formula, data = data, REML = TRUE, control = tight)))
  L <- diag(length(fixef(m)))
  kr_adj <- as.matrix(pbkrtest::vcovAdj(as(m, "lmerMod")))
  res <- list(
    name = name, dataset = dataset, formula = deparse(formula, width.cutoff = 500L), notes = notes,
    fixef_names = names(fixef(m)), reml_criterion = REMLcrit(m), theta = as.numeric(getME(m, "theta")), sigma = sigma(m),
    coef_satterthwaite = tab(coef(summary(m, ddf = "Satterthwaite"))),
    coef_kenward_roger = tab(coef(summary(m, ddf = "Kenward-Roger"))),
    vcov = unname(as.matrix(vcov(m))),
    vcov_kr = unname(kr_adj),
    vcov_varpar = unname(m@vcov_varpar),
    anova3_satterthwaite = tab(anova(m, type = 3, ddf = "Satterthwaite")),
    anova1_satterthwaite = tab(anova(m, type = 1, ddf = "Satterthwaite")),
    anova3_kenward_roger = tab(anova(m, type = 3, ddf = "Kenward-Roger")),
    anova1_kenward_roger = tab(anova(m, type = 1, ddf = "Kenward-Roger")),
    # a two-row contrast: all fixed effects but the intercept, jointly
    contrast_L = if (ncol(L) > 2) unname(L[-1, , drop = FALSE]) else NULL,
    contest_md_satterthwaite = if (ncol(L) > 2) tab(contestMD(m, L[-1, , drop = FALSE], ddf = "Satterthwaite")) else NULL,
    summary_text = paste(capture.output(print(summary(m, ddf = "Satterthwaite"))), collapse = "\n"),
    summary_kr_text = paste(capture.output(print(summary(m, ddf = "Kenward-Roger"))), collapse = "\n"),
    anova_lme4 = tab(anova(m, ddf = "lme4")),
    anova_lme4_text = paste(capture.output(print(anova(m, ddf = "lme4"))), collapse = "\n"),
    anova3_text = paste(capture.output(print(anova(m, type = 3))), collapse = "\n"),
    contest_md_kenward_roger = if (ncol(L) > 2) tab(contestMD(m, L[-1, , drop = FALSE], ddf = "Kenward-Roger")) else NULL
  )
  save(name, res)
}

lmm_tests("sleep_corr", Reaction ~ Days + (Days | Subject), ss, "sleepstudy")
lmm_tests("sleep_grp", Reaction ~ Days * grp + (Days | Subject), ss, "sleepstudy",
          notes = "grp = c('a','b','c')[(as.integer(Subject) %% 3) + 1], levels a, b, c")
lmm_tests("machines", score ~ Machine + (1 | Worker) + (1 | Worker:Machine), M, "Machines")
lmm_tests("machines_crossed", score ~ 1 + (1 | Worker) + (1 | Machine), M, "Machines",
          notes = "crossed Worker x Machine random intercepts (as Penicillin's plate x sample)")

# Satterthwaite for an ML fit and for a fit with prior weights (lmerTest; no KR for these)
satt_only <- function(name, m, notes) {
  save(name, list(name = name, notes = notes, fixef_names = names(fixef(m)),
                  theta = as.numeric(getME(m, "theta")), sigma = sigma(m),
                  coef_satterthwaite = tab(coef(summary(m))),
                  anova3_satterthwaite = tab(anova(m, type = 3)),
                  vcov_varpar = unname(m@vcov_varpar),
                  summary_text = paste(capture.output(print(summary(m))), collapse = "\n")))
}
satt_only("sleep_ml", lmerTest::lmer(Reaction ~ Days + (Days | Subject), ss, REML = FALSE,
                                     control = tight), "REML = FALSE")
ss$w <- 1 + ss$Days / 10
satt_only("sleep_weights", lmerTest::lmer(Reaction ~ Days + (Days | Subject), ss, weights = w,
                                          control = tight), "weights = 1 + Days/10")

# likelihood-ratio tests between nested models (REML fits refitted by ML)
m0 <- lme4::lmer(Reaction ~ Days + (1 | Subject), ss)
m1 <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss)
m2 <- lme4::lmer(Reaction ~ 1 + (Days | Subject), ss)
a01 <- anova(m0, m1)
a201 <- anova(m2, m0, m1)
a01n <- anova(m0, m1, refit = FALSE)
save("lrt_sleep", list(
  formulas = c("Reaction ~ Days + (1 | Subject)", "Reaction ~ Days + (Days | Subject)",
               "Reaction ~ 1 + (Days | Subject)"),
  anova_m0_m1 = tab(a01), anova_m2_m0_m1 = tab(a201), anova_m0_m1_norefit = tab(a01n),
  anova_m0_m1_text = paste(capture.output(print(a01)), collapse = "\n"),
  heading = attr(a01, "heading")))

# GLMMs: no refit, likelihood-ratio test of the Laplace log-likelihoods
cb <- read.csv(paste0(d, "cbpp.csv"))
cb$herd <- factor(cb$herd, levels = 1:15); cb$period <- factor(cb$period, levels = 1:4)
g0 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cb, family = binomial)
g1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cb, family = binomial)
save("lrt_cbpp", list(formulas = c("cbind(incidence, size - incidence) ~ 1 + (1 | herd)",
                                   "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
                      anova_g0_g1 = tab(anova(g0, g1))))

# confidence intervals: profile (lme4's confint(profile(m))) and Wald
ci <- function(name, formula, data, dataset) {
  m <- eval(substitute(lme4::lmer(formula, data = data, REML = TRUE)))
  pr <- profile(m)
  cp <- confint(pr)
  cp90 <- confint(pr, level = 0.90)
  cw <- confint(m, method = "Wald")
  mml <- refitML(m)
  prd <- as.data.frame(pr)
  save(name, list(formula = deparse(formula, width.cutoff = 500L), dataset = dataset,
                  profile = tab(cp), profile90 = tab(cp90), wald = tab(cw),
                  ml_deviance = deviance(mml),
                  profile_points = list(.zeta = prd$.zeta, .par = as.character(prd$.par),
                                        value = sapply(seq_len(nrow(prd)), function(i) prd[i, as.character(prd$.par[i])]))))
}
ci("confint_sleep", Reaction ~ Days + (Days | Subject), ss, "sleepstudy")
ci("confint_dyestuff", Yield ~ 1 + (1 | Batch), dy, "Dyestuff")
cat("done\n")
