"""The portal: pages for people (zh-CN first, English beside it) over the public API."""
