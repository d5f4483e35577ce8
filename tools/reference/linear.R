# Reference values for pyglmm.lm, its ANOVA tables and the random-factor ANOVA
# (run from the repository root):
#   Rscript tools/reference/linear.R
# Writes one JSON file per case to tests/fixtures/linear/<name>.json.
# Type II / III tables come from car::Anova; type I and model comparisons from stats::anova.
suppressMessages({library(car); library(lme4); library(jsonlite)})
d <- "src/pyglmm/datasets/data/"
out <- "tests/fixtures/linear/"
dir.create(out, showWarnings = FALSE, recursive = TRUE)

M <- read.csv(paste0(d, "Machines.csv"))
M$Worker <- factor(M$Worker, levels = 1:6); M$Machine <- factor(M$Machine, levels = c("A", "B", "C"))
B <- read.csv(paste0(d, "Bond.csv"))
B$Ingot <- factor(B$Ingot, levels = 1:7); B$Metal <- factor(B$Metal, levels = c("c", "i", "n"))
ss <- read.csv(paste0(d, "sleepstudy.csv"))
ss$Subject <- factor(ss$Subject, levels = sort(unique(ss$Subject)))
ceb <- read.table(paste0(d, "ceb.dat"), header = TRUE)
ceb$res <- factor(ceb$res, levels = c("rural", "Suva", "urban"))
ceb$educ <- factor(ceb$educ, levels = c("lower", "none", "sec+", "upper"))
ceb$dur <- factor(ceb$dur, levels = c("0-4", "10-14", "15-19", "20-24", "25-29", "5-9"))

num <- function(x) { x <- as.numeric(x); x }

lm_summary <- function(m) {
  s <- summary(m)
  cf <- coef(m)                       # includes NA for aliased
  full <- matrix(NA_real_, length(cf), 4, dimnames = list(names(cf), NULL))
  full[rownames(s$coefficients), ] <- s$coefficients
  w <- weights(m); r <- residuals(m)
  if (!is.null(w)) r <- (sqrt(w) * r)[w != 0]
  fs <- s$fstatistic
  list(
    coef_names = names(cf), estimate = num(cf), se = num(full[, 2]), t = num(full[, 3]),
    p = num(full[, 4]), aliased = is.na(cf), rank = m$rank, df_resid = df.residual(m),
    sigma = s$sigma, r_squared = s$r.squared, adj_r_squared = s$adj.r.squared,
    fstatistic = if (is.null(fs)) NULL else num(fs),
    f_p_value = if (is.null(fs)) NULL else pf(fs[1], fs[2], fs[3], lower.tail = FALSE)[[1]],
    resid_quantiles = num(quantile(r)), rss = deviance(m), nobs = nobs(m),
    loglik = as.numeric(logLik(m)), aic = AIC(m), bic = BIC(m),
    fitted = num(fitted(m)), residuals = num(residuals(m)),
    vcov = unname(vcov(m, complete = FALSE)),
    confint = unname(confint(m)),
    summary_text = paste(capture.output(print(s)), collapse = "\n")
  )
}

aov_table <- function(tab) {
  # stats::anova (type I) has Mean Sq; car::Anova does not.
  df <- num(tab[["Df"]]); ss <- num(tab[["Sum Sq"]])
  list(terms = rownames(tab), df = df, sum_sq = ss,
       mean_sq = if (!is.null(tab[["Mean Sq"]])) num(tab[["Mean Sq"]]) else ss / df,
       F = num(tab[["F value"]]), p_value = num(tab[["Pr(>F)"]]),
       text = paste(capture.output(print(tab)), collapse = "\n"))
}

cmp_table <- function(tab) {
  list(df_resid = num(tab[["Res.Df"]]), rss = num(tab[["RSS"]]), df = num(tab[["Df"]]),
       sum_sq = num(tab[["Sum of Sq"]]), F = num(tab[["F"]]), p_value = num(tab[["Pr(>F)"]]),
       text = paste(capture.output(print(tab)), collapse = "\n"))
}

save <- function(name, x) {
  write_json(x, paste0(out, name, ".json"), digits = NA, auto_unbox = TRUE, null = "null",
             na = "null", pretty = TRUE)
}

# ---- 4.1.2 Machines -------------------------------------------------------------
m0 <- lm(score ~ Machine * Worker, data = M)
m1 <- lm(score ~ Machine + Worker, data = M)
agg <- aggregate(score ~ Machine * Worker, data = M, FUN = mean)
m2 <- lm(score ~ Machine + Worker, data = agg)
op <- options(contrasts = c("contr.sum", "contr.poly"))
m0s <- lm(score ~ Machine * Worker, data = M)
options(op)
K <- 3
mse_agg <- deviance(m2) / df.residual(m2); mse_full <- deviance(m0) / df.residual(m0)
F_agg <- K * mse_agg / mse_full
a0 <- anova(m0)
ms <- setNames(a0[["Mean Sq"]], rownames(a0))
vm <- lmer(score ~ Machine + (1 | Worker) + (1 | Worker:Machine), data = M, REML = TRUE)
vc <- as.data.frame(VarCorr(vm))
save("machines", list(
  full = lm_summary(m0), additive = lm_summary(m1), aggregated = lm_summary(m2),
  full_sum = lm_summary(m0s),
  aggregated_data = list(Machine = as.character(agg$Machine), Worker = as.character(agg$Worker),
                         score = agg$score),
  anova_full = aov_table(anova(m0)), anova_additive = aov_table(anova(m1)),
  anova_aggregated = aov_table(anova(m2)),
  anova2_full = aov_table(Anova(m0, type = 2)), anova3_full = aov_table(Anova(m0, type = 3)),
  anova3_full_sum = aov_table(Anova(m0s, type = 3)),
  anova2_additive = aov_table(Anova(m1, type = 2)), anova3_additive = aov_table(Anova(m1, type = 3)),
  partial_f = cmp_table(anova(m1, m0)),
  partial_f3 = cmp_table(anova(lm(score ~ Machine, data = M), m1, m0)),
  random = list(K = K, F = F_agg, df1 = df.residual(m2), df2 = df.residual(m0),
                p_value = pf(F_agg, df.residual(m2), df.residual(m0), lower.tail = FALSE),
                mse_agg = mse_agg, mse_full = mse_full,
                F_machine = ms[["Machine"]] / ms[["Machine:Worker"]],
                p_machine = pf(ms[["Machine"]] / ms[["Machine:Worker"]], 2, 10, lower.tail = FALSE),
                F_worker = ms[["Worker"]] / ms[["Machine:Worker"]],
                p_worker = pf(ms[["Worker"]] / ms[["Machine:Worker"]], 5, 10, lower.tail = FALSE),
                sigma2 = ms[["Residuals"]], sigma2_ab = (ms[["Machine:Worker"]] - ms[["Residuals"]]) / K,
                sigma2_b = (ms[["Worker"]] - ms[["Machine:Worker"]]) / (3 * K),
                sigma2_b_restricted = (ms[["Worker"]] - ms[["Residuals"]]) / (3 * K)),
  lmer_reml = list(group = vc$grp, vcov = vc$vcov, fixef = num(fixef(vm)),
                   se = num(sqrt(diag(as.matrix(vcov(vm))))))
))

# ---- 4.1.1 Bonds ----------------------------------------------------------------
b1 <- lm(pressure ~ Metal + Ingot, data = B)
ab <- anova(b1); msb <- setNames(ab[["Mean Sq"]], rownames(ab))
bagg <- aggregate(pressure ~ Ingot, data = B, FUN = mean)
b2 <- lm(pressure ~ 1, data = bagg)
nmet <- 3
Fb <- nmet * (deviance(b2) / df.residual(b2)) / (deviance(b1) / df.residual(b1))
bm <- lmer(pressure ~ Metal + (1 | Ingot), data = B, REML = TRUE)
bvc <- as.data.frame(VarCorr(bm))
save("bond", list(
  fit = lm_summary(b1), anova = aov_table(ab), anova2 = aov_table(Anova(b1, type = 2)),
  aggregated = lm_summary(b2), partial_f = cmp_table(anova(lm(pressure ~ Metal, data = B), b1)),
  random = list(multiplier = nmet, F = Fb, df1 = df.residual(b2), df2 = df.residual(b1),
                p_value = pf(Fb, df.residual(b2), df.residual(b1), lower.tail = FALSE),
                F_metal = msb[["Metal"]] / msb[["Residuals"]],
                p_metal = pf(msb[["Metal"]] / msb[["Residuals"]], 2, 12, lower.tail = FALSE),
                sigma2 = msb[["Residuals"]], sigma2_b = (msb[["Ingot"]] - msb[["Residuals"]]) / nmet),
  lmer_reml = list(group = bvc$grp, vcov = bvc$vcov, fixef = num(fixef(bm)))
))

# ---- unbalanced Machines: types I, II, III differ --------------------------------
Mu <- M[-c(1, 5, 20, 33, 47), ]
u0 <- lm(score ~ Machine * Worker, data = Mu)
op <- options(contrasts = c("contr.sum", "contr.poly"))
u0s <- lm(score ~ Machine * Worker, data = Mu)
options(op)
save("machines_unbalanced", list(
  dropped_rows = c(1, 5, 20, 33, 47), fit = lm_summary(u0),
  anova1 = aov_table(anova(u0)), anova2 = aov_table(Anova(u0, type = 2)),
  anova3_treatment = aov_table(Anova(u0, type = 3)), anova3_sum = aov_table(Anova(u0s, type = 3))
))

# ---- rank-deficient: an empty Machine x Worker cell ------------------------------
Mr <- M[!(M$Machine == "C" & M$Worker == "6"), ]
r0 <- lm(score ~ Machine * Worker, data = Mr)
rr <- ss; rr$Days2 <- 2 * rr$Days
r1 <- lm(Reaction ~ Days + Days2, data = rr)
save("rank_deficient", list(
  machines = lm_summary(r0), machines_anova1 = aov_table(anova(r0)),
  machines_anova2 = aov_table(suppressMessages(Anova(r0, type = 2))),
  collinear = lm_summary(r1), collinear_anova1 = aov_table(anova(r1))
))

# ---- sleepstudy: continuous predictor, prediction intervals, influence ------------
s1 <- lm(Reaction ~ Days, data = ss)
nd <- data.frame(Days = c(0, 2.5, 9, 12))
pc <- predict(s1, nd, interval = "confidence", se.fit = TRUE)
pp <- predict(s1, nd, interval = "prediction", level = 0.9)
s2 <- lm(Reaction ~ Days * Subject, data = ss)
op <- options(contrasts = c("contr.sum", "contr.poly"))
s2s <- lm(Reaction ~ Days * Subject, data = ss)
options(op)
save("sleepstudy", list(
  fit = lm_summary(s1), newdata_days = nd$Days,
  predict_fit = num(pc$fit[, 1]), predict_se = num(pc$se.fit),
  confidence_lwr = num(pc$fit[, 2]), confidence_upr = num(pc$fit[, 3]),
  prediction90_lwr = num(pp[, 2]), prediction90_upr = num(pp[, 3]),
  hat = num(hatvalues(s1)), cooks = num(cooks.distance(s1)), rstandard = num(rstandard(s1)),
  rstudent = num(rstudent(s1)),
  interaction = lm_summary(s2), interaction_anova1 = aov_table(anova(s2)),
  interaction_anova2 = aov_table(Anova(s2, type = 2)),
  interaction_anova3_sum = aov_table(Anova(s2s, type = 3))
))

# ---- weighted least squares (ceb cell means, weights = number of women) ----------
w1 <- lm(mean ~ dur + res + educ, data = ceb, weights = n)
nd2 <- ceb[c(1, 10, 40), c("dur", "res", "educ")]
pw <- predict(w1, nd2, interval = "confidence", se.fit = TRUE)
w2 <- lm(mean ~ dur + res * educ, data = ceb, weights = n)
op <- options(contrasts = c("contr.sum", "contr.poly"))
w2s <- lm(mean ~ dur + res * educ, data = ceb, weights = n)
options(op)
cz <- ceb; cz$w <- cz$n; cz$w[c(2, 7, 30)] <- 0
wz <- lm(mean ~ dur + res + educ, data = cz, weights = w)
save("weighted", list(
  fit = lm_summary(w1), anova1 = aov_table(anova(w1)), anova2 = aov_table(Anova(w1, type = 2)),
  newdata_rows = c(1, 10, 40), predict_fit = num(pw$fit[, 1]), predict_se = num(pw$se.fit),
  confidence_lwr = num(pw$fit[, 2]), confidence_upr = num(pw$fit[, 3]),
  interaction = lm_summary(w2), interaction_anova1 = aov_table(anova(w2)),
  interaction_anova2 = aov_table(Anova(w2, type = 2)),
  interaction_anova3_sum = aov_table(Anova(w2s, type = 3)),
  zero_weight_rows = c(2, 7, 30), zero = lm_summary(wz), zero_anova1 = aov_table(anova(wz)),
  zero_hat = num(hatvalues(wz)), zero_cooks = num(cooks.distance(wz))
))

# ---- a balanced design whose ANOVA estimate of sigma2_b is negative ----------------
# No block effect in the simulation; the first seed whose ANOVA estimate of sigma2_b is
# negative (with a positive sigma2_ab) is kept, and the data are written to the fixture.
neg <- expand.grid(rep = 1:2, trt = c("a", "b", "c"), blk = c("B1", "B2", "B3", "B4"))
neg$trt <- factor(neg$trt, levels = c("a", "b", "c"))
neg$blk <- factor(neg$blk, levels = c("B1", "B2", "B3", "B4"))
for (seed in 1:200) {
  set.seed(seed)
  neg$y <- round(12 + c(0, 1, 2)[as.integer(neg$trt)] + rnorm(24), 2)
  an <- anova(lm(y ~ trt * blk, data = neg)); msn <- setNames(an[["Mean Sq"]], rownames(an))
  if (msn[["blk"]] < msn[["trt:blk"]] && msn[["trt:blk"]] > msn[["Residuals"]]) break
}
nm <- suppressMessages(lmer(y ~ trt + (1 | blk) + (1 | blk:trt), data = neg, REML = TRUE))
nvc <- as.data.frame(VarCorr(nm))
an1 <- anova(lm(y ~ trt + blk, data = neg)); msn1 <- setNames(an1[["Mean Sq"]], rownames(an1))
save("negative_component", list(
  seed = seed, data = list(y = neg$y, trt = as.character(neg$trt), blk = as.character(neg$blk)),
  anova = aov_table(an),
  sigma2 = msn[["Residuals"]], sigma2_ab = (msn[["trt:blk"]] - msn[["Residuals"]]) / 2,
  sigma2_b = (msn[["blk"]] - msn[["trt:blk"]]) / 6,
  lmer_reml = list(group = nvc$grp, vcov = nvc$vcov),
  additive_sigma2_b = (msn1[["blk"]] - msn1[["Residuals"]]) / 6,
  additive_sigma2 = msn1[["Residuals"]]
))
# ---- few residual df (all residuals printed) and a saturated fit ----------------------
small_rows <- c(1, 2, 19, 20, 37, 38, 39)
sm <- lm(score ~ Machine, data = M[small_rows, ])
sat <- lm(score ~ Machine, data = M[c(1, 19, 37), ])
save("small", list(
  rows = small_rows, fit = lm_summary(sm),
  saturated_rows = c(1, 19, 37),
  saturated_text = paste(capture.output(print(summary(sat))), collapse = "\n"),
  saturated_coef = num(coef(sat)),
  empty_text = paste(capture.output(print(summary(lm(score ~ 0, data = M)))), collapse = "\n")
))

# ---- R's number formatting used by the printed tables ------------------------------
fx <- list(
  c(1755.26333333333, 1241.895, 426.53, 33.2866666666669), c(0.000285548485771282, 0.5, 12),
  c(1e-10, 2.5e-7, 3), c(-1.5, 0.25, 100), c(123456789, 0.1), c(0.97, 0.9694, 217.8, 1e-05)
)
pv <- list(c(0.0002855485, 0.0089494553), c(1e-20, 0.5), c(1e-20, 3.06e-15, 0.00567),
           c(1e-20), c(0.04, 0.2, 0.93280))
save("formatting", list(
  values = fx,
  format4 = lapply(fx, function(x) format(x, digits = 4)),
  format7 = lapply(fx, function(x) format(x, digits = 7)),
  formatC4 = lapply(fx, function(x) formatC(x, digits = 4)),
  round2 = lapply(fx, function(x) round(x, 2)),
  zapsmall5 = lapply(fx, function(x) zapsmall(x, 5)),
  pvalues = pv,
  format_pval3 = lapply(pv, function(x) format.pval(x, digits = 3)),
  format_pval4 = lapply(pv, function(x) format.pval(x, digits = 4))
))
cat("wrote", length(list.files(out)), "fixtures to", out, "\n")
