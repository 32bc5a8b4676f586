-- Beyond the anchors (issue #8): how a configuration's messages look and
-- which events it hears.
--
-- lang is the configuration's message language ('zh' or 'en'; '' in rows
-- from before, read as 'zh'); template is its {"title","body"} template
-- override as JSON, '' for none; conditions narrow its events by
-- environment, strategy, task type and outcome, as JSON, '' for none. A
-- channel's template overrides its configuration's, part by part.

ALTER TABLE callback_configs ADD COLUMN lang TEXT NOT NULL DEFAULT '';
ALTER TABLE callback_configs ADD COLUMN template TEXT NOT NULL DEFAULT '';
ALTER TABLE callback_configs ADD COLUMN conditions TEXT NOT NULL DEFAULT '';
ALTER TABLE callback_channels ADD COLUMN template TEXT NOT NULL DEFAULT '';
